// Vite builds the dashboard into web/dist, which `controlplane dashboard` serves. In development
// (`npm run dev`), /k8s, /auth, /ws and /exec go to a running dashboard (DASHBOARD_URL).
import { defineConfig } from "vitest/config";
import vue from "@vitejs/plugin-vue";

const target = process.env.DASHBOARD_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [vue()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
    target: "es2022",
  },
  server: {
    proxy: {
      "/k8s": target,
      "/auth": target,
      "/ws": { target, ws: true },
      "/exec": { target, ws: true },
    },
  },
  test: {
    include: ["tests/**/*.test.ts"],
    environment: "node",
  },
});
