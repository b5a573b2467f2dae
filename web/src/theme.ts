// Light/dark theme: the system's preference unless the user picks one (kept in localStorage,
// a preference of this browser, not of the server).
import { ref, watch } from "vue";

export type Theme = "light" | "dark";
const stored = typeof localStorage !== "undefined" ? (localStorage.getItem("cp-theme") as Theme | null) : null;
const system: Theme = typeof matchMedia !== "undefined" && matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
export const theme = ref<Theme>(stored ?? system);

watch(
  theme,
  (t) => {
    document.documentElement.dataset.theme = t;
    localStorage.setItem("cp-theme", t);
  },
  { immediate: true },
);

export function toggleTheme(): void {
  theme.value = theme.value === "dark" ? "light" : "dark";
}
