// Per-browser preferences, kept in localStorage (spec 15.2 defaults).

const KEY = 'greenroom.notifications.preferences';

export const DEFAULTS = Object.freeze({
  webNotificationsEnabled: false,
  titleCounterEnabled: true,
  snackbarEnabled: true,
});

export class Preferences {
  constructor(storage = safeStorage()) {
    this._storage = storage;
    this._listeners = new Set();
    this.values = { ...DEFAULTS, ...this._load() };
  }

  get(name) {
    return this.values[name];
  }

  set(name, value) {
    this.values = { ...this.values, [name]: value };
    try {
      this._storage && this._storage.setItem(KEY, JSON.stringify(this.values));
    } catch (e) {
      // private mode or quota: keep the value for this page only
    }
    this._listeners.forEach((listener) => listener(name, value));
  }

  onChange(listener) {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  _load() {
    try {
      const raw = this._storage && this._storage.getItem(KEY);
      const parsed = raw ? JSON.parse(raw) : {};
      const out = {};
      for (const name of Object.keys(DEFAULTS)) {
        if (typeof parsed[name] === 'boolean') out[name] = parsed[name];
      }
      return out;
    } catch (e) {
      return {};
    }
  }
}

function safeStorage() {
  try {
    return window.localStorage;
  } catch (e) {
    return null;
  }
}
