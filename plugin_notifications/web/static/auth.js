// Sign-in through the host's auth plugin: GET <api>/auth/<provider>/refresh
// answers Backstage's {backstageIdentity: {token, expiresInSeconds, identity}}.
// The token stays in memory only and is refreshed before it expires.

export class SignInError extends Error {}

// Signing out is remembered in this browser (every tab of the inbox), so a reload or another tab does
// not sign straight back in. Only this marker is stored, never a token.
export const SIGNED_OUT_KEY = 'greenroom.notifications.signedOut';
// Set in this tab just before it leaves for notifications.web.switchUserUrl: when the page comes back
// (signed in at the proxy as someone, possibly someone else), it signs in instead of staying signed out.
const SWITCHING_KEY = 'greenroom.notifications.switchingUser';

function storage(name) {
  try {
    return window[name];
  } catch (e) {
    return null; // storage blocked: sign-out lasts as long as the page
  }
}

/** Whether the user signed out in this browser and has not signed in since. */
export function isSignedOut() {
  const local = storage('localStorage');
  const session = storage('sessionStorage');
  if (session && session.getItem(SWITCHING_KEY)) {
    session.removeItem(SWITCHING_KEY);
    if (local) local.removeItem(SIGNED_OUT_KEY);
    return false;
  }
  return Boolean(local && local.getItem(SIGNED_OUT_KEY));
}

/** Remember the sign-out (other tabs see it through the storage event); `switching`: this tab comes back signed in. */
export function rememberSignedOut({ switching = false } = {}) {
  const local = storage('localStorage');
  if (local) local.setItem(SIGNED_OUT_KEY, new Date().toISOString());
  const session = storage('sessionStorage');
  if (switching && session) session.setItem(SWITCHING_KEY, '1');
}

/** Sign in again from now on. */
export function forgetSignedOut() {
  const local = storage('localStorage');
  if (local) local.removeItem(SIGNED_OUT_KEY);
}

export class Identity {
  /**
   * @param {{apiBaseUrl: string, provider: 'guest'|'proxy', onChange?: (identity) => void}} options
   */
  constructor({ apiBaseUrl, provider, onChange }) {
    this._url = `${apiBaseUrl}/auth/${encodeURIComponent(provider)}/refresh`;
    this.provider = provider;
    this._onChange = onChange || (() => {});
    this._token = null;
    this._expiresAt = 0;
    this._lifetime = 0;
    this._pending = null;
    this._timer = null;
    this.identity = null;
    this.refreshCount = 0;
  }

  /** The current token, refreshed first when it is (nearly) expired. */
  async getToken() {
    if (this._signedOut) throw new SignInError('Signed out');
    if (this._token && Date.now() < this._expiresAt - this._margin()) return this._token;
    return this.refresh();
  }

  /** Sign in (again); concurrent callers share one request. */
  refresh() {
    if (!this._pending) {
      this._pending = this._fetch().finally(() => {
        this._pending = null;
      });
    }
    return this._pending;
  }

  /** Forget the token (after a 401): the next getToken() signs in again. */
  invalidate() {
    this._token = null;
    this._expiresAt = 0;
  }

  /** Forget the token and the user for good: no refresh is scheduled, and getToken() fails from now on. */
  signOut() {
    clearTimeout(this._timer);
    this._timer = null;
    this._signedOut = true;
    this._token = null;
    this._expiresAt = 0;
    this.identity = null;
  }

  // Refresh when a quarter of the lifetime (at most 5 minutes) is left.
  _margin() {
    return Math.min(300000, this._lifetime / 4);
  }

  async _fetch() {
    let response;
    try {
      response = await fetch(this._url, {
        method: 'GET',
        credentials: 'include',
        headers: { 'X-Requested-With': 'XMLHttpRequest' },
        cache: 'no-store',
      });
    } catch (error) {
      throw new SignInError(`Could not reach the sign-in service: ${error.message}`);
    }
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (!response.ok) {
      const message = (body && body.error && body.error.message) || response.statusText || 'unknown error';
      throw new SignInError(`Sign-in with the ${this.provider} provider failed (${response.status}): ${message}`);
    }
    const identity = body && body.backstageIdentity;
    if (!identity || typeof identity.token !== 'string') {
      throw new SignInError('Sign-in answered without a token');
    }
    if (this._signedOut) throw new SignInError('Signed out'); // signed out while this sign-in was on its way
    const seconds = Number(identity.expiresInSeconds) > 0 ? Number(identity.expiresInSeconds) : 3600;
    this._token = identity.token;
    this._lifetime = seconds * 1000;
    this._expiresAt = Date.now() + this._lifetime;
    this.identity = { ...(identity.identity || {}), profile: body.profile || {} };
    this.refreshCount += 1;
    this._schedule();
    this._onChange(this.identity);
    return this._token;
  }

  _schedule() {
    clearTimeout(this._timer);
    const delay = Math.max(1000, this._expiresAt - this._margin() - Date.now());
    this._timer = setTimeout(() => {
      this.refresh().catch(() => {
        // the next getToken() tries again and reports the error
      });
    }, delay);
  }
}
