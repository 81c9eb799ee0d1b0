// The delivery schedule card of the settings view: per channel a digest mode (immediate, hourly,
// daily, weekly) and quiet hours, from GET/PUT /api/notifications/preferences (the caller's own).

import { clear, h } from './dom.js';

const MODES = [
  ['', 'Default (set by your administrators)'],
  ['immediate', 'Immediately'],
  ['hourly', 'Hourly digest'],
  ['daily', 'Daily digest'],
  ['weekly', 'Weekly digest'],
];
const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

/** The browser's IANA timezone (UTC when it cannot tell). */
export function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch (e) {
    return 'UTC';
  }
}

function timeZones() {
  try {
    return typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  } catch (e) {
    return [];
  }
}

/** The editable state of one channel: its stored entry, or defaults when it has none (mode ''). */
function toState(channel, stored) {
  const zone = browserTimeZone();
  const quiet = stored && stored.quietHours;
  return {
    channel,
    mode: stored ? stored.mode || 'immediate' : '',
    at: (stored && stored.at) || '09:00',
    weekday: (stored && stored.weekday) || 'monday',
    timezone: (stored && stored.timezone) || zone,
    quiet: Boolean(quiet),
    quietStart: (quiet && quiet.start) || '22:00',
    quietEnd: (quiet && quiet.end) || '07:00',
    quietTimezone: (quiet && quiet.timezone) || (stored && stored.timezone) || zone,
  };
}

/** The PUT body: an entry for every channel not left at the default. */
export function toBody(states) {
  const channels = [];
  for (const state of states) {
    if (!state.mode) continue;
    const entry = { channel: state.channel, mode: state.mode, at: state.at, weekday: state.weekday, timezone: state.timezone.trim() };
    if (state.quiet) entry.quietHours = { start: state.quietStart, end: state.quietEnd, timezone: state.quietTimezone.trim() };
    channels.push(entry);
  }
  return { channels };
}

function field(label, control, extraClass) {
  return h('label', { class: `field${extraClass ? ` ${extraClass}` : ''}` }, h('span', { class: 'field-label' }, label), control);
}

export class DeliveryPreferences {
  /** @param {{root: HTMLElement, client}} options */
  constructor({ root, client }) {
    this.root = root;
    this.client = client;
    this.states = [];
    this.dirty = false;
    this.status = null; // {kind: 'ok' | 'error', text}
  }

  async load() {
    clear(this.root).append(h('p', { class: 'muted' }, 'Loading the delivery schedule\u2026'));
    try {
      this._apply(await this.client.getPreferences());
      this.status = null;
    } catch (error) {
      clear(this.root).append(h('p', { class: 'muted', 'data-testid': 'preferences-load-error' }, `Could not load the delivery schedule: ${error.detail || error.message}`));
      return;
    }
    this._render();
  }

  _apply(answer) {
    const stored = new Map((answer.channels || []).map((entry) => [entry.channel.toLowerCase(), entry]));
    this.states = (answer.available || []).map((channel) => toState(channel, stored.get(channel.toLowerCase())));
    this.dirty = false;
  }

  _changed(rerender) {
    this.dirty = true;
    this.status = null;
    if (rerender) this._render();
    else {
      this.saveButton.disabled = false;
      this._renderStatus();
    }
  }

  _render() {
    this.saveButton = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'preferences-save', disabled: !this.dirty, onclick: () => this._save() }, 'Save');
    this.statusEl = h('p', { class: 'pref-status', role: 'status', 'data-testid': 'preferences-status' });
    const zones = timeZones();
    clear(this.root).append(
      h('div', { class: 'card-header' }, h('h2', {}, 'Delivery schedule'), this.saveButton),
      h('p', { class: 'muted' }, 'Get a channel\u2019s notifications at once or as one digest per hour, day or week, and pause it during quiet hours. The web inbox always shows them at once.'),
      h('datalist', { id: 'pref-timezones' }, zones.map((zone) => h('option', { value: zone }))),
      ...(this.states.length === 0
        ? [h('p', { class: 'muted', 'data-testid': 'preferences-empty' }, 'No channel besides the web inbox delivers notifications here.')]
        : this.states.map((state) => this._channel(state))),
      this.statusEl,
    );
    this._renderStatus();
  }

  _renderStatus() {
    const status = this.status;
    this.statusEl.textContent = status ? status.text : '';
    this.statusEl.hidden = !status;
    if (status) this.statusEl.dataset.state = status.kind;
  }

  _text(state, key, attrs) {
    return h('input', {
      ...attrs,
      value: state[key],
      oninput: (event) => {
        state[key] = event.target.value;
        this._changed(false);
      },
    });
  }

  _channel(state) {
    const id = state.channel;
    const mode = h(
      'select',
      {
        'data-testid': 'pref-mode',
        onchange: (event) => {
          state.mode = event.target.value;
          this._changed(true);
        },
      },
      MODES.map(([value, label]) => h('option', { value, selected: value === state.mode }, label)),
    );
    const scheduled = state.mode === 'daily' || state.mode === 'weekly';
    const zone = (key, testId) => this._text(state, key, { type: 'text', list: 'pref-timezones', 'data-testid': testId, autocomplete: 'off', spellcheck: 'false', placeholder: 'Europe/Berlin' });
    const fields = [field('Delivery', mode, 'field-mode')];
    if (state.mode === 'weekly') {
      fields.push(
        field(
          'Day',
          h(
            'select',
            {
              'data-testid': 'pref-weekday',
              onchange: (event) => {
                state.weekday = event.target.value;
                this._changed(false);
              },
            },
            WEEKDAYS.map((day) => h('option', { value: day, selected: day === state.weekday }, day[0].toUpperCase() + day.slice(1))),
          ),
        ),
      );
    }
    if (scheduled) {
      fields.push(field('At', this._text(state, 'at', { type: 'time', required: true, 'data-testid': 'pref-at' })));
      fields.push(field('Timezone', zone('timezone', 'pref-timezone'), 'field-zone'));
    }
    const quiet = state.mode
      ? [
          h(
            'label',
            { class: 'toggle' },
            h('input', {
              type: 'checkbox',
              'data-testid': 'pref-quiet',
              checked: state.quiet,
              onchange: (event) => {
                state.quiet = event.target.checked;
                this._changed(true);
              },
            }),
            h('span', {}, 'Quiet hours: hold deliveries until they end'),
          ),
          state.quiet
            ? h(
                'div',
                { class: 'pref-fields' },
                field('From', this._text(state, 'quietStart', { type: 'time', required: true, 'data-testid': 'pref-quiet-start' })),
                field('Until', this._text(state, 'quietEnd', { type: 'time', required: true, 'data-testid': 'pref-quiet-end' })),
                field('Timezone', zone('quietTimezone', 'pref-quiet-timezone'), 'field-zone'),
              )
            : null,
        ]
      : null;
    return h(
      'fieldset',
      { class: 'pref-channel', 'data-testid': 'pref-channel', dataset: { channel: id } },
      h('legend', {}, id),
      h('div', { class: 'pref-fields' }, fields),
      quiet,
    );
  }

  async _save() {
    this.saveButton.disabled = true;
    try {
      this._apply(await this.client.updatePreferences(toBody(this.states)));
      this.status = { kind: 'ok', text: 'Delivery schedule saved.' };
      this._render();
    } catch (error) {
      this.saveButton.disabled = false;
      this.status = { kind: 'error', text: `Could not save: ${error.detail || error.message}` };
      this._renderStatus();
    }
  }
}
