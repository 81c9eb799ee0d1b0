// The settings view: this browser's preferences (localStorage) and the
// channel x origin x topic matrix of GET/POST /api/notifications/settings (spec 15.5), and the
// delivery schedule (digests, quiet hours) of /api/notifications/preferences (delivery.js).

import { DeliveryPreferences } from './delivery.js';
import { clear, h } from './dom.js';
import * as webNotifications from './webnotify.js';

function checkbox(attrs, onChange) {
  return h('input', { type: 'checkbox', ...attrs, onchange: (event) => onChange(event.target.checked) });
}

/** Every origin of any channel, in first-seen order, with the union of its topics. */
export function matrixRows(settings) {
  const rows = new Map();
  for (const channel of settings.channels || []) {
    for (const origin of channel.origins || []) {
      if (!rows.has(origin.id)) rows.set(origin.id, []);
      const topics = rows.get(origin.id);
      for (const topic of origin.topics || []) if (!topics.includes(topic.id)) topics.push(topic.id);
    }
  }
  return [...rows.entries()].map(([origin, topics]) => ({ origin, topics }));
}

function findOrigin(channel, originId, create) {
  channel.origins = channel.origins || [];
  let origin = channel.origins.find((item) => item.id === originId);
  if (!origin && create) {
    origin = { id: originId, enabled: true, topics: [] };
    channel.origins.push(origin);
  }
  return origin;
}

export class SettingsView {
  /**
   * @param {{root: HTMLElement, client, preferences: import('./prefs.js').Preferences,
   *          onError: (error) => void, onSaved: () => void}} options
   */
  constructor({ root, client, preferences, onError, onSaved }) {
    this.root = root;
    this.client = client;
    this.preferences = preferences;
    this.onError = onError;
    this.onSaved = onSaved || (() => {});
    this.settings = null;
    this.dirty = false;
  }

  async mount() {
    clear(this.root);
    this.browserCard = h('div', { class: 'card settings-card', 'data-testid': 'browser-settings' });
    this.matrixCard = h('div', { class: 'card settings-card', 'data-testid': 'delivery-settings' });
    this.scheduleCard = h('div', { class: 'card settings-card', 'data-testid': 'delivery-preferences' });
    this.root.append(this.browserCard, this.matrixCard, this.scheduleCard);
    this._renderBrowser();
    const schedule = new DeliveryPreferences({ root: this.scheduleCard, client: this.client }).load();
    this.matrixCard.append(h('p', { class: 'muted' }, 'Loading settings\u2026'));
    try {
      this.settings = await this.client.getNotificationSettings();
      this.dirty = false;
      this._renderMatrix();
    } catch (error) {
      clear(this.matrixCard).append(h('p', { class: 'muted' }, 'Could not load the delivery settings.'));
      this.onError(error);
    }
    await schedule;
  }

  _renderBrowser() {
    const prefs = this.preferences;
    const permission = webNotifications.permission();
    const permissionText = {
      granted: 'allowed by this browser',
      denied: 'blocked by this browser; allow them in its site settings',
      default: 'the browser will ask for permission',
      unsupported: 'not supported by this browser',
    }[permission];
    clear(this.browserCard).append(
      h('h2', {}, 'This browser'),
      h('p', { class: 'muted' }, 'Stored in this browser only.'),
      h(
        'label',
        { class: 'toggle' },
        checkbox({ 'data-testid': 'pref-web-notifications', checked: prefs.get('webNotificationsEnabled'), disabled: permission === 'unsupported' }, async (on) => {
          prefs.set('webNotificationsEnabled', on);
          if (on) await webNotifications.requestPermission();
          this._renderBrowser();
        }),
        h('span', {}, 'Browser notifications for new notifications ', h('span', { class: 'muted', 'data-testid': 'permission' }, `(${permissionText})`)),
      ),
      h(
        'label',
        { class: 'toggle' },
        checkbox({ 'data-testid': 'pref-title-counter', checked: prefs.get('titleCounterEnabled') }, (on) => prefs.set('titleCounterEnabled', on)),
        h('span', {}, 'Unread count in the tab title'),
      ),
      h(
        'label',
        { class: 'toggle' },
        checkbox({ 'data-testid': 'pref-snackbar', checked: prefs.get('snackbarEnabled') }, (on) => prefs.set('snackbarEnabled', on)),
        h('span', {}, 'Pop-up messages for new notifications on this page'),
      ),
    );
  }

  _renderMatrix() {
    const channels = this.settings.channels || [];
    const rows = matrixRows(this.settings);
    this.saveButton = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'settings-save', disabled: !this.dirty, onclick: () => this._save() }, 'Save');
    const head = h(
      'tr',
      {},
      h('th', { scope: 'col' }, 'Origin / topic'),
      channels.map((channel) =>
        h(
          'th',
          { scope: 'col', class: 'channel' },
          typeof channel.enabled === 'boolean'
            ? h(
                'label',
                { class: 'channel-toggle' },
                checkbox({ 'data-testid': `channel-${channel.id}`, checked: channel.enabled, 'aria-label': `Channel ${channel.id}` }, (on) => {
                  channel.enabled = on;
                  this._changed();
                }),
                channel.id,
              )
            : channel.id,
        ),
      ),
    );
    const body = [];
    for (const row of rows) {
      body.push(
        h(
          'tr',
          { class: 'origin-row', 'data-testid': 'settings-origin', dataset: { origin: row.origin } },
          h('th', { scope: 'row' }, row.origin),
          channels.map((channel) => {
            const origin = findOrigin(channel, row.origin, false);
            const enabled = origin ? origin.enabled !== false : true;
            return h(
              'td',
              {},
              checkbox({ checked: enabled, 'aria-label': `${row.origin} on ${channel.id}`, dataset: { channel: channel.id, origin: row.origin } }, (on) => {
                findOrigin(channel, row.origin, true).enabled = on;
                this._changed();
              }),
            );
          }),
        ),
      );
      for (const topic of row.topics) {
        body.push(
          h(
            'tr',
            { class: 'topic-row', 'data-testid': 'settings-topic', dataset: { origin: row.origin, topic } },
            h('th', { scope: 'row', class: 'topic' }, topic),
            channels.map((channel) => {
              const origin = findOrigin(channel, row.origin, false);
              const entry = origin && (origin.topics || []).find((item) => item.id === topic);
              const originOn = origin ? origin.enabled !== false : true;
              return h(
                'td',
                {},
                checkbox(
                  { checked: entry ? entry.enabled !== false : true, disabled: !originOn, 'aria-label': `${row.origin} / ${topic} on ${channel.id}`, dataset: { channel: channel.id, origin: row.origin, topic } },
                  (on) => {
                    const target = findOrigin(channel, row.origin, true);
                    target.topics = target.topics || [];
                    const found = target.topics.find((item) => item.id === topic);
                    if (found) found.enabled = on;
                    else target.topics.push({ id: topic, enabled: on });
                    this._changed();
                  },
                ),
              );
            }),
          ),
        );
      }
    }
    clear(this.matrixCard).append(
      h('div', { class: 'card-header' }, h('h2', {}, 'Delivery'), this.saveButton),
      h('p', { class: 'muted' }, 'Which senders (origins) and topics reach you on each channel.'),
      rows.length === 0
        ? h('p', { class: 'muted', 'data-testid': 'settings-empty' }, 'Nothing to configure yet: settings appear once you have received notifications.')
        : h('table', { class: 'matrix', 'data-testid': 'settings-matrix' }, h('thead', {}, head), h('tbody', {}, body)),
    );
  }

  _changed() {
    this.dirty = true;
    this._renderMatrix();
  }

  async _save() {
    this.saveButton.disabled = true;
    try {
      this.settings = await this.client.updateNotificationSettings({ channels: this.settings.channels });
      this.dirty = false;
      this._renderMatrix();
      this.onSaved();
    } catch (error) {
      this.saveButton.disabled = false;
      this.onError(error);
    }
  }
}
