// Boot the web inbox: sign in, wire the badge, title counter, signals,
// browser notifications, and the inbox / settings views.

import { NotificationsClient } from './api.js';
import { Identity } from './auth.js';
import { clear, h, toast } from './dom.js';
import { Inbox } from './inbox.js';
import { Preferences } from './prefs.js';
import { SettingsView } from './settings.js';
import { TitleCounter } from './title.js';
import * as webNotifications from './webnotify.js';

const SIGNAL_CHANNEL = 'notifications';
const POLL_MS = 30000;

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
    this.onError = (error) => toast(error.message || String(error), { kind: 'error', testId: 'error-toast' });
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
    await this.route();
    await this.refreshStatus();
    await this._connectSignals();
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
      onStateChange: (state) => {
        connection.dataset.state = state;
        connection.textContent = { open: 'Live', connecting: 'Connecting\u2026', closed: 'Reconnecting\u2026' }[state] || state;
      },
    });
    client.subscribe(SIGNAL_CHANNEL, (message) => this._onSignal(message));
  }

  // Without signals, poll while the tab is visible (spec 15.4).
  _poll() {
    setInterval(() => {
      if (document.visibilityState === 'visible') {
        this.refreshStatus();
        if (!document.getElementById('inbox-view').hidden) this.inbox.reload();
      }
    }, POLL_MS);
  }

  _onSignal(message) {
    if (!message || !message.action) return;
    this.refreshStatus();
    if (!document.getElementById('inbox-view').hidden) this.inbox.refreshThrottled();
    if (message.action === 'new_notification' && message.notification_id) this._announce(message.notification_id);
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
        kind: ['critical', 'high'].includes(severity) ? 'warning' : 'info',
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
  }

  _signInFailed(error) {
    document.body.dataset.state = 'signed-out';
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
