// Boot the web inbox: sign in, wire the badge, title counter, signals,
// browser notifications, and the inbox / settings views.

import { NotificationsClient } from './api.js';
import { Identity, SIGNED_OUT_KEY, forgetSignedOut, isSignedOut, rememberSignedOut } from './auth.js';
import { clear, h, toast, watchToastSpace } from './dom.js';
import { Inbox } from './inbox.js';
import { Preferences } from './prefs.js';
import { SettingsView } from './settings.js';
import { TitleCounter } from './title.js';
import * as webNotifications from './webnotify.js';

const SIGNAL_CHANNEL = 'notifications';
const POLL_MS = 30000;
// Signals arriving together (a replay after a reconnect, a burst of sends) are handled as one batch:
// one /status, one (throttled) list refresh, and pop-ups for at most MAX_ANNOUNCED of them.
const SIGNAL_BATCH_MS = 200;
const MAX_ANNOUNCED = 3;

function readConfig() {
  const el = document.getElementById('greenroom-config');
  try {
    return JSON.parse(el ? el.textContent : '{}');
  } catch (e) {
    return {};
  }
}

/** Load the signals client script (a classic script defining window.GreenroomSignals). */
function loadSignalsClient(apiBaseUrl) {
  if (window.GreenroomSignals) return Promise.resolve(window.GreenroomSignals);
  return new Promise((resolve) => {
    const script = document.createElement('script');
    script.src = `${apiBaseUrl}/signals/client.js`;
    script.onload = () => resolve(window.GreenroomSignals || null);
    script.onerror = () => resolve(null);
    document.head.append(script);
  });
}

function truncate(text, length) {
  return text.length > length ? `${text.slice(0, length)}...` : text;
}

// Pop-up kind (its colour) per severity: critical and high are told apart, not only from the rest.
const TOAST_KIND = { critical: 'critical', high: 'high' };

class App {
  constructor(config) {
    this.config = config;
    this.apiBaseUrl = config.apiBaseUrl || '/api';
    this.preferences = new Preferences();
    this.title = new TitleCounter();
    this.badge = document.getElementById('unread-badge');
    this.unread = 0;
    this.identity = new Identity({
      apiBaseUrl: this.apiBaseUrl,
      provider: config.signInProvider || 'guest',
      onChange: (identity) => this._showUser(identity),
    });
    this.client = new NotificationsClient({ baseUrl: `${this.apiBaseUrl}/notifications`, identity: this.identity });
    this.signedOut = false;
    this.signals = null;
    this._pollTimer = null;
    this.onError = (error) => {
      if (this.signedOut) return; // requests that were on their way when the user signed out
      toast(error.message || String(error), { kind: 'error', testId: 'error-toast' });
    };
    this.inbox = new Inbox({
      root: document.getElementById('inbox-view'),
      client: this.client,
      onChanged: () => this.refreshStatus(),
      onError: this.onError,
      markAsReadOnLinkOpen: Boolean(config.markAsReadOnLinkOpen),
    });
    this.settings = new SettingsView({
      root: document.getElementById('settings-view'),
      client: this.client,
      preferences: this.preferences,
      onError: this.onError,
      onSaved: () => toast('Settings saved', { timeout: 4000, testId: 'saved-toast' }),
    });
  }

  async start() {
    watchToastSpace();
    this._wireAccountMenu();
    window.addEventListener('storage', (event) => this._onStorage(event));
    if (isSignedOut()) {
      this.signedOut = true;
      this._showSignedOut();
      return;
    }
    document.body.dataset.state = 'signing-in';
    try {
      await this.identity.getToken();
    } catch (error) {
      this._signInFailed(error);
      return;
    }
    this.title.setEnabled(this.preferences.get('titleCounterEnabled'));
    this.preferences.onChange((name, value) => {
      if (name === 'titleCounterEnabled') {
        this.title.setEnabled(value);
        this.title.setCount(this.unread);
      }
    });
    document.getElementById('nav-notifications').addEventListener('click', () => {
      if (this.preferences.get('webNotificationsEnabled')) webNotifications.requestPermission();
    });
    window.addEventListener('hashchange', () => this.route());
    this.inbox.mount();
    // Subscribe first, then fetch: a change in between arrives as a signal instead of being missed.
    await this._connectSignals();
    await this.route();
    await this.refreshStatus();
    document.body.dataset.state = 'ready';
  }

  /** #settings shows the settings view, anything else the inbox (with ?id= deep links). */
  async route() {
    const settings = window.location.hash === '#settings';
    document.getElementById('inbox-view').hidden = settings;
    document.getElementById('settings-view').hidden = !settings;
    document.getElementById('nav-notifications').classList.toggle('active', !settings);
    document.getElementById('nav-settings').classList.toggle('active', settings);
    document.getElementById('page-title').textContent = settings ? 'Notification settings' : 'Notifications';
    if (settings) {
      await this.settings.mount();
      return;
    }
    const id = new URLSearchParams(window.location.search).get('id');
    if (id) await this.inbox.focus(id);
    else await this.inbox.reload();
  }

  async refreshStatus() {
    try {
      const status = await this.client.getStatus();
      this.setUnread(Number(status.unread) || 0);
    } catch (error) {
      this.onError(error);
    }
  }

  setUnread(count) {
    this.unread = count;
    this.badge.textContent = count > 99 ? '99+' : String(count);
    this.badge.hidden = count <= 0;
    this.badge.setAttribute('aria-label', `${count} unread`);
    document.getElementById('nav-notifications').setAttribute('aria-label', `Notifications, ${count} unread`);
    this.title.setCount(count);
    this.inbox.setUnread(count);
  }

  async _connectSignals() {
    const connection = document.getElementById('connection');
    const signals = await loadSignalsClient(this.apiBaseUrl);
    if (!signals) {
      connection.textContent = 'Updates every 30 s';
      connection.dataset.state = 'polling';
      this._poll();
      return;
    }
    const client = new signals.SignalClient({
      baseUrl: new URL(`${this.apiBaseUrl}/signals`, window.location.href).toString(),
      getToken: () => this.identity.getToken(),
      onStateChange: (state, transport) => {
        connection.dataset.state = state;
        connection.dataset.transport = transport || 'websocket';
        connection.textContent = { open: 'Live', connecting: 'Connecting\u2026', closed: 'Reconnecting\u2026' }[state] || state;
        connection.title = state === 'open' ? `Live updates (${transport === 'sse' ? 'Server-Sent Events' : 'WebSocket'})` : '';
      },
    });
    if (this.signedOut) return; // signed out while the script loaded
    this.signals = client;
    // The client resumes from its last position after any reconnect: missed signals are replayed, in
    // order, through the callback (no refetch needed); only when the server cannot replay (resync) is
    // everything fetched again, once.
    client.subscribe(SIGNAL_CHANNEL, (message) => this._onSignal(message), { onResync: () => this._onResync() });
  }

  // Without signals, poll while the tab is visible (spec 15.4).
  _poll() {
    this._pollTimer = setInterval(() => {
      if (document.visibilityState === 'visible') {
        this.refreshStatus();
        if (!document.getElementById('inbox-view').hidden) this.inbox.reload();
      }
    }, POLL_MS);
  }

  _onSignal(message) {
    if (!message || !message.action || this.signedOut) return;
    this._batch = this._batch || [];
    this._batch.push(message);
    if (!this._batchTimer) this._batchTimer = setTimeout(() => this._flushSignals(), SIGNAL_BATCH_MS);
  }

  _flushSignals() {
    const messages = this._batch || [];
    this._batch = [];
    this._batchTimer = null;
    if (!messages.length || this.signedOut) return;
    this.signalsHandled = (this.signalsHandled || 0) + messages.length;
    document.body.dataset.signals = String(this.signalsHandled);
    this.refreshStatus();
    if (!document.getElementById('inbox-view').hidden) this.inbox.refreshThrottled();
    const fresh = [...new Set(messages.filter((m) => m.action === 'new_notification' && m.notification_id).map((m) => m.notification_id))];
    if (fresh.length > MAX_ANNOUNCED) {
      if (this.preferences.get('snackbarEnabled')) {
        toast(`${fresh.length} new notifications`, { testId: 'new-notifications-toast', actions: [{ label: 'Show', onClick: () => this._showUnread() }] });
      }
      return;
    }
    fresh.forEach((id) => this._announce(id));
  }

  /** The server could not replay what this page missed: fetch the count and the list again, once. */
  _onResync() {
    if (this.signedOut) return;
    this.resyncs = (this.resyncs || 0) + 1;
    document.body.dataset.resyncs = String(this.resyncs);
    this.refreshStatus();
    if (!document.getElementById('inbox-view').hidden) this.inbox.reload();
  }

  _showUnread() {
    window.history.pushState(null, '', this.config.basePath || '/notifications');
    this.inbox.showView('unread');
    this.route();
  }

  async _announce(id) {
    const web = this.preferences.get('webNotificationsEnabled') && webNotifications.permission() === 'granted';
    const snackbar = this.preferences.get('snackbarEnabled');
    if (!web && !snackbar) return;
    let notification;
    try {
      notification = await this.client.getNotification(id);
    } catch (error) {
      return; // e.g. filtered out by the user's settings meanwhile
    }
    const markRead = () => this.client.updateNotifications({ ids: [id], read: true }).then(() => this.refreshStatus(), this.onError);
    const focusInbox = () => {
      window.history.pushState(null, '', `${this.config.basePath || '/notifications'}?id=${encodeURIComponent(id)}`);
      this.route();
    };
    if (web) {
      webNotifications.show(notification, { onOpenLink: markRead, onFocusInbox: focusInbox });
    }
    if (snackbar) {
      const title = String((notification.payload && notification.payload.title) || 'New notification');
      const severity = (notification.payload && notification.payload.severity) || 'normal';
      toast(truncate(title, 50), {
        kind: TOAST_KIND[severity] || 'info',
        label: TOAST_KIND[severity] ? severity : undefined,
        testId: 'new-notification-toast',
        actions: [
          { label: 'Open', onClick: focusInbox },
          { label: 'Mark as read', onClick: markRead },
        ],
      });
    }
  }

  _showUser(identity) {
    const el = document.getElementById('user');
    const ref = identity.userEntityRef || '';
    const name = ref.replace(/^user:(default\/)?/, '');
    clear(el).append(h('span', { class: 'avatar', 'aria-hidden': 'true' }, (name[0] || '?').toUpperCase()), h('span', { class: 'user-name', title: ref }, name));
    el.dataset.user = ref;
    el.disabled = false;
    el.setAttribute('aria-label', `Account: ${ref}`);
    document.getElementById('user-menu-ref').textContent = ref;
  }

  // -- account: sign out, switch user -------------------------------------------------

  _wireAccountMenu() {
    const button = document.getElementById('user');
    const menu = document.getElementById('user-menu');
    const switchUser = document.getElementById('switch-user');
    switchUser.hidden = !this.config.switchUserUrl;
    const close = () => {
      menu.hidden = true;
      button.setAttribute('aria-expanded', 'false');
    };
    button.addEventListener('click', () => {
      const open = menu.hidden;
      menu.hidden = !open;
      button.setAttribute('aria-expanded', String(open));
      if (open) menu.querySelector('.menu-item:not([hidden])').focus();
    });
    menu.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        close();
        button.focus();
      }
    });
    document.addEventListener('click', (event) => {
      if (!menu.hidden && !event.target.closest('.account')) close();
    });
    document.getElementById('sign-out').addEventListener('click', () => {
      close();
      this.signOut();
    });
    switchUser.addEventListener('click', () => {
      close();
      this.signOut({ switchUser: true });
    });
  }

  /**
   * Forget the token, stop live updates and take the user's notifications off the page. Every tab of
   * this browser follows (storage event). With `switchUser`, go to notifications.web.switchUserUrl (an
   * authenticating proxy's sign-out, which asks who is there), and sign in as whoever comes back.
   */
  signOut({ switchUser = false, remember = true } = {}) {
    this.signedOut = true;
    if (remember) rememberSignedOut({ switching: switchUser && Boolean(this.config.switchUserUrl) });
    if (this.signals) this.signals.close();
    this.signals = null;
    clearInterval(this._pollTimer);
    this.identity.signOut();
    this._showSignedOut();
    if (switchUser && this.config.switchUserUrl) window.location.assign(this.config.switchUserUrl);
  }

  _showSignedOut() {
    document.body.dataset.state = 'signed-out';
    clear(document.getElementById('inbox-view')).hidden = true;
    clear(document.getElementById('settings-view')).hidden = true;
    clear(document.getElementById('toasts'));
    const user = document.getElementById('user');
    clear(user).append(h('span', { class: 'avatar avatar-empty', 'aria-hidden': 'true' }, '?'), h('span', { class: 'user-name' }, 'Signed out'));
    user.dataset.user = '';
    user.disabled = true;
    document.getElementById('user-menu').hidden = true;
    document.getElementById('user-menu-ref').textContent = '';
    const connection = document.getElementById('connection');
    connection.dataset.state = 'signed-out';
    connection.textContent = 'Offline';
    this.unread = 0;
    this.badge.hidden = true;
    this.title.setCount(0);
    document.getElementById('page-subtitle').textContent = '';
    const panel = document.getElementById('signed-out');
    const signIn = () => {
      forgetSignedOut();
      window.location.reload();
    };
    clear(panel).append(
      h('h2', {}, 'You are signed out'),
      h('p', { class: 'muted' }, 'Your notifications are hidden until you sign in again. Signing out here signs out every tab of this inbox in this browser.'),
      h(
        'div',
        { class: 'signed-out-actions' },
        h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'sign-in', onclick: signIn }, 'Sign in'),
        this.config.switchUserUrl
          ? h(
              'button',
              {
                type: 'button',
                class: 'btn',
                'data-testid': 'sign-in-other',
                onclick: () => {
                  rememberSignedOut({ switching: true });
                  window.location.assign(this.config.switchUserUrl);
                },
              },
              'Sign in as someone else',
            )
          : null,
      ),
    );
    panel.hidden = false;
  }

  /** Another tab signed out (or in): follow it. */
  _onStorage(event) {
    if (event.key !== SIGNED_OUT_KEY) return;
    if (event.newValue && !this.signedOut) this.signOut({ remember: false });
    else if (!event.newValue && this.signedOut) window.location.reload();
  }

  _signInFailed(error) {
    document.body.dataset.state = 'signin-failed';
    const box = document.getElementById('signin-error');
    clear(box).append(
      h('h2', {}, 'Could not sign in'),
      h('p', {}, error.message || String(error)),
      h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'signin-retry', onclick: () => window.location.reload() }, 'Try again'),
    );
    box.hidden = false;
  }
}

const app = new App(readConfig());
app.start();
