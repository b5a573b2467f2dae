// Who is signed in (as the dashboard's server and the API's SelfSubjectReview say).
import { shallowRef } from "vue";
import { auth, onSignedOut, type Identity } from "./api/client";
import { forgetAnswers } from "./api/permissions";

export const identity = shallowRef<Identity | null>(null);
export const checked = shallowRef(false);

export async function loadSession(): Promise<Identity | null> {
  try {
    identity.value = await auth.session();
  } catch {
    identity.value = null;
  }
  checked.value = true;
  return identity.value;
}

export async function signIn(body: { token?: string; kubeconfig?: string }): Promise<Identity> {
  const id = await auth.login(body);
  forgetAnswers();
  identity.value = id;
  return id;
}

export async function signOut(): Promise<void> {
  try {
    await auth.logout();
  } finally {
    identity.value = null;
    forgetAnswers();
    location.assign("/signin");
  }
}

onSignedOut(() => {
  if (identity.value) {
    identity.value = null;
    location.assign(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`);
  }
});
