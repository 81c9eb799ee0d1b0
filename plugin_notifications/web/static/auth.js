// Sign-in through the host's auth plugin: GET <api>/auth/<provider>/refresh
// answers Backstage's {backstageIdentity: {token, expiresInSeconds, identity}}.
// The token stays in memory only and is refreshed before it expires.

export class SignInError extends Error {}

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
