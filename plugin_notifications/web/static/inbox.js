// The notifications list (spec 15.4): filters, search, pagination, row and bulk actions.

import { clear, debounce, h, relativeTime, safeLink, throttle } from './dom.js';
import { descriptionElement } from './richtext.js';

export const VIEWS = {
  unread: { label: 'Unread', filter: { read: false } },
  read: { label: 'Read', filter: { read: true } },
  saved: { label: 'Saved', filter: { saved: true } },
  all: { label: 'All', filter: {} },
  archived: { label: 'Archived', filter: { archived: true } },
};
const CREATED = {
  any: { label: 'Any time', ms: 0 },
  day: { label: 'Last 24h', ms: 24 * 3600 * 1000 },
  week: { label: 'Last week', ms: 7 * 24 * 3600 * 1000 },
};
const SORTS = {
  newest: { label: 'Newest on top', sort: 'created', sortOrder: 'desc' },
  oldest: { label: 'Oldest on top', sort: 'created', sortOrder: 'asc' },
  topic: { label: 'Topic', sort: 'topic', sortOrder: 'asc' },
  origin: { label: 'Origin', sort: 'origin', sortOrder: 'asc' },
};
const SEVERITIES = {
  critical: 'Critical',
  high: 'High',
  normal: 'Normal',
  low: 'Low',
};
const PAGE_SIZES = [5, 10, 20, 50];
const REFRESH_THROTTLE_MS = 2000;
const CONFIRM_MS = 4000;

/**
 * A button that asks once more before a destructive action: the first click turns it into
 * "Confirm ..." (data-confirm=true) for a few seconds, the second runs `onConfirm`.
 */
function confirmButton({ label, confirmLabel, testId, className = 'btn btn-small' }, onConfirm) {
  let timer = null;
  const reset = () => {
    clearTimeout(timer);
    button.textContent = label;
    button.classList.remove('btn-danger');
    delete button.dataset.confirm;
  };
  const button = h(
    'button',
    {
      type: 'button',
      class: className,
      'data-testid': testId,
      onclick: () => {
        if (button.dataset.confirm === 'true') {
          reset();
          onConfirm();
          return;
        }
        button.textContent = confirmLabel;
        button.classList.add('btn-danger');
        button.dataset.confirm = 'true';
        timer = setTimeout(reset, CONFIRM_MS);
      },
      onblur: () => setTimeout(reset, 200),
    },
    label,
  );
  button.reset = reset;
  return button;
}

function select(id, label, options, value, onChange) {
  const el = h(
    'select',
    { id, 'data-testid': id, onchange: (event) => onChange(event.target.value) },
    Object.entries(options).map(([key, text]) => h('option', { value: key, selected: key === value }, text)),
  );
  return h('label', { class: 'field', for: id }, h('span', { class: 'field-label' }, label), el);
}

function labels(map) {
  return Object.fromEntries(Object.entries(map).map(([key, value]) => [key, value.label || value]));
}

function severityOf(notification) {
  const severity = notification.payload && notification.payload.severity;
  return Object.prototype.hasOwnProperty.call(SEVERITIES, severity) ? severity : 'normal';
}

export class Inbox {
  /**
   * @param {{root: HTMLElement, client: import('./api.js').NotificationsClient,
   *          onChanged: () => void, onError: (error) => void, markAsReadOnLinkOpen?: boolean}} options
   */
  constructor({ root, client, onChanged, onError, markAsReadOnLinkOpen = false }) {
    this.root = root;
    this.client = client;
    this.onChanged = onChanged;
    this.onError = onError;
    this.markAsReadOnLinkOpen = markAsReadOnLinkOpen;
    this.state = {
      view: 'unread',
      created: 'any',
      sort: 'newest',
      severity: 'low',
      topic: '',
      search: '',
      page: 0,
      pageSize: 5,
    };
    this.items = [];
    this.total = 0;
    this.topics = [];
    this.unread = 0;
    this.selected = new Set();
    this.highlightId = null;
    this._seq = 0;
    this.refreshThrottled = throttle(() => this.reload(), REFRESH_THROTTLE_MS);
    this._searchChanged = debounce((value) => this._set({ search: value.trim() }), 300);
  }

  mount() {
    clear(this.root);
    this.topicSelect = h('select', {
      id: 'filter-topic',
      'data-testid': 'filter-topic',
      onchange: (event) => this._set({ topic: event.target.value }),
    });
    this.titleEl = h('h2', { class: 'table-title', id: 'list-title', 'data-testid': 'list-title' });
    this.selectAll = h('input', {
      type: 'checkbox',
      'aria-label': 'Select all on this page',
      'data-testid': 'select-all',
      onchange: (event) => this._selectAll(event.target.checked),
    });
    this.bulkRead = h('button', { type: 'button', class: 'btn', 'data-testid': 'bulk-read', onclick: () => this._bulkRead() });
    this.bulkSaved = h('button', { type: 'button', class: 'btn', 'data-testid': 'bulk-saved', onclick: () => this._bulkSaved() });
    this.bulkArchive = h('button', { type: 'button', class: 'btn', 'data-testid': 'bulk-archive', onclick: () => this._bulkArchive() });
    this.bulkDelete = confirmButton(
      { label: 'Delete selected', confirmLabel: 'Delete them?', testId: 'bulk-delete', className: 'btn' },
      () => this._delete(this._selectedItems().map((item) => item.id)),
    );
    this.markAll = h(
      'button',
      { type: 'button', class: 'btn btn-primary', 'data-testid': 'mark-all-read', onclick: () => this._markAllRead() },
      'Mark all read',
    );
    this.list = h('ul', { class: 'list', id: 'list', 'data-testid': 'list' });
    this.pager = h('div', { class: 'pager', 'data-testid': 'pager' });
    const search = h('input', {
      type: 'search',
      id: 'filter-search',
      'data-testid': 'filter-search',
      placeholder: 'Search title and description',
      'aria-label': 'Search',
      oninput: (event) => this._searchChanged(event.target.value),
      onkeydown: (event) => {
        if (event.key === 'Enter') this._set({ search: event.target.value.trim() });
      },
    });
    this.root.append(
      h(
        'div',
        { class: 'filters card' },
        select('filter-view', 'View', labels(VIEWS), this.state.view, (view) => this._set({ view })),
        select('filter-created', 'Sent out', labels(CREATED), this.state.created, (created) => this._set({ created })),
        select('filter-sort', 'Sort by', labels(SORTS), this.state.sort, (sort) => this._set({ sort })),
        select('filter-severity', 'Min severity', SEVERITIES, this.state.severity, (severity) => this._set({ severity })),
        h('label', { class: 'field', for: 'filter-topic' }, h('span', { class: 'field-label' }, 'Topic'), this.topicSelect),
        h('label', { class: 'field field-search', for: 'filter-search' }, h('span', { class: 'field-label' }, 'Search'), search),
      ),
      h(
        'div',
        { class: 'card table' },
        h(
          'div',
          { class: 'table-header' },
          h('div', { class: 'table-header-left' }, this.selectAll, this.titleEl),
          h('div', { class: 'bulk' }, this.bulkRead, this.bulkSaved, this.bulkArchive, this.bulkDelete, this.markAll),
        ),
        this.list,
        this.pager,
      ),
    );
    this._renderTopics();
    this._renderBulk();
  }

  /** Filters as the API takes them (the common ones, shared by list and topics). */
  filterOptions() {
    const created = CREATED[this.state.created].ms;
    return {
      ...VIEWS[this.state.view].filter,
      search: this.state.search || undefined,
      createdAfter: created ? new Date(Date.now() - created) : undefined,
      minimumSeverity: this.state.severity === 'low' ? undefined : this.state.severity,
    };
  }

  /** Load the page of notifications and the topics, in parallel; stale answers are dropped. */
  async reload() {
    const seq = ++this._seq;
    const common = this.filterOptions();
    const { sort, sortOrder } = SORTS[this.state.sort];
    this.root.setAttribute('aria-busy', 'true');
    try {
      const highlight = this.highlightId && this.state.page === 0 ? this.client.getNotification(this.highlightId, { descriptionHtml: true }).catch(() => null) : null;
      const [page, topics, highlighted] = await Promise.all([
        this.client.getNotifications({
          ...common,
          topic: this.state.topic || undefined,
          sort,
          sortOrder,
          limit: this.state.pageSize,
          offset: this.state.page * this.state.pageSize,
          descriptionHtml: true,
        }),
        this.client.getTopics(common),
        highlight,
      ]);
      if (seq !== this._seq) return;
      const lastPage = Math.max(0, Math.ceil((page.totalCount || 0) / this.state.pageSize) - 1);
      if (this.state.page > lastPage) {
        // the page emptied (archived, deleted or read elsewhere): show the last one that has rows
        this.state = { ...this.state, page: lastPage };
        await this.reload();
        return;
      }
      let items = page.notifications || [];
      if (highlighted && !items.some((item) => item.id === highlighted.id)) items = [highlighted, ...items];
      this.items = items;
      this.total = page.totalCount || 0;
      this.topics = (topics && topics.topics) || [];
      const visible = new Set(items.map((item) => item.id));
      this.selected = new Set([...this.selected].filter((id) => visible.has(id)));
      this._render();
    } catch (error) {
      if (seq === this._seq) this.onError(error);
    } finally {
      if (seq === this._seq) {
        this.root.removeAttribute('aria-busy');
        this.root.dataset.loaded = String(seq);
      }
    }
  }

  /** The unread count from /status: "Mark all read" is enabled only when it is above zero. */
  setUnread(count) {
    this.unread = count;
    this._renderBulk();
  }

  /** Deep link ?id=: show that notification at the top, in the view matching its read state. */
  async focus(id) {
    this.highlightId = id;
    try {
      const notification = await this.client.getNotification(id);
      this.state = { ...this.state, view: notification.read ? 'read' : 'unread', page: 0 };
      const view = this.root.querySelector('#filter-view');
      if (view) view.value = this.state.view;
    } catch (error) {
      this.onError(error);
    }
    await this.reload();
  }

  /** Switch to a view (and its first page), as choosing it in the View filter does. */
  showView(view) {
    this.state = { ...this.state, view, page: 0 };
    this.highlightId = null;
    const select = this.root.querySelector('#filter-view');
    if (select) select.value = view;
  }

  _set(change) {
    this.state = { ...this.state, page: 0, ...change };
    this.highlightId = null; // a deep-linked notification is shown until the filters change
    this.selected.clear();
    this.reload();
  }

  _render() {
    this.titleEl.textContent = `${VIEWS[this.state.view].label} notifications (${this.total})`;
    this._renderTopics();
    clear(this.list);
    if (this.items.length === 0) {
      this.list.append(h('li', { class: 'empty', 'data-testid': 'empty' }, this._emptyText()));
    }
    for (const item of this.items) this.list.append(this._row(item));
    this._renderPager();
    this._renderBulk();
  }

  _emptyText() {
    const filtered = this.state.search || this.state.topic || this.state.severity !== 'low' || this.state.created !== 'any';
    if (filtered) return 'No notifications match these filters.';
    return {
      unread: 'No unread notifications. All caught up!',
      read: 'No read notifications.',
      saved: 'No saved notifications.',
      all: 'No notifications yet.',
      archived: 'Nothing archived. Archived notifications stay here, out of the inbox and its counts.',
    }[this.state.view];
  }

  _renderTopics() {
    if (!this.topicSelect) return;
    const topics = [...this.topics];
    if (this.state.topic && !topics.includes(this.state.topic)) topics.unshift(this.state.topic);
    clear(this.topicSelect);
    this.topicSelect.append(h('option', { value: '', selected: !this.state.topic }, 'Any topic'));
    for (const topic of topics) this.topicSelect.append(h('option', { value: topic, selected: topic === this.state.topic }, topic));
  }

  _row(item) {
    const payload = item.payload || {};
    const severity = severityOf(item);
    const isRead = Boolean(item.read);
    const isSaved = Boolean(item.saved);
    const isArchived = Boolean(item.archived);
    const classes = ['row', `sev-${severity}`, isRead ? 'is-read' : 'is-unread'];
    if (item.id === this.highlightId) classes.push('highlight');
    const checkbox = h('input', {
      type: 'checkbox',
      'aria-label': 'Select notification',
      checked: this.selected.has(item.id),
      onchange: (event) => {
        if (event.target.checked) this.selected.add(item.id);
        else this.selected.delete(item.id);
        this._renderBulk();
      },
    });
    const title = safeLink(payload.link, { class: 'row-title', 'data-testid': 'notification-title' }, payload.title || '(untitled)');
    if (title.tagName === 'A') {
      title.addEventListener('click', () => {
        if (this.markAsReadOnLinkOpen && !isRead) this._update([item.id], { read: true });
      });
    }
    const meta = [
      payload.topic ? h('span', { class: 'meta-topic', 'data-testid': 'notification-topic' }, payload.topic) : null,
      h('span', { class: 'meta-origin' }, item.origin),
      h('time', { datetime: item.created, title: new Date(item.created).toLocaleString() }, relativeTime(item.created)),
      isSaved ? h('span', { class: 'meta-saved' }, 'Saved') : null,
      isArchived ? h('span', { class: 'meta-archived', 'data-testid': 'notification-archived', title: new Date(item.archived).toLocaleString() }, `Archived ${relativeTime(item.archived)}`) : null,
    ].filter(Boolean);
    return h(
      'li',
      { class: classes.join(' '), 'data-testid': 'notification', dataset: { id: item.id, read: String(isRead), saved: String(isSaved), archived: String(isArchived), severity } },
      h('div', { class: 'row-select' }, checkbox),
      h('span', { class: `sev-chip sev-chip-${severity}`, title: `Severity: ${severity}` }, severity),
      h(
        'div',
        { class: 'row-main' },
        title,
        descriptionElement(item),
        h('div', { class: 'row-meta' }, meta.flatMap((node, index) => (index ? [h('span', { class: 'dot', 'aria-hidden': 'true' }, '\u00b7'), node] : [node]))),
      ),
      h(
        'div',
        { class: 'row-actions' },
        h(
          'button',
          { type: 'button', class: 'btn btn-small', 'data-testid': isRead ? 'mark-unread' : 'mark-read', onclick: () => this._update([item.id], { read: !isRead }) },
          isRead ? 'Mark unread' : 'Mark read',
        ),
        h(
          'button',
          { type: 'button', class: 'btn btn-small', 'data-testid': isSaved ? 'unsave' : 'save', onclick: () => this._update([item.id], { saved: !isSaved }) },
          isSaved ? 'Unsave' : 'Save',
        ),
        h(
          'button',
          { type: 'button', class: 'btn btn-small', 'data-testid': isArchived ? 'unarchive' : 'archive', onclick: () => this._update([item.id], { archived: !isArchived }) },
          isArchived ? 'Unarchive' : 'Archive',
        ),
        confirmButton({ label: 'Delete', confirmLabel: 'Delete?', testId: 'delete' }, () => this._delete([item.id])),
        h(
          'button',
          { type: 'button', class: 'btn btn-small', 'data-testid': 'why', 'aria-expanded': 'false', onclick: (event) => this._toggleWhy(item, event.currentTarget) },
          'Why am I seeing this?',
        ),
      ),
    );
  }

  /** Show (or hide) the delivery log of a notification under its row: the path that reached the user, each channel. */
  async _toggleWhy(item, button) {
    const row = button.closest('li');
    const open = row.querySelector('.row-why');
    if (open) {
      open.remove();
      button.setAttribute('aria-expanded', 'false');
      return;
    }
    button.setAttribute('aria-expanded', 'true');
    const panel = h('div', { class: 'row-why', 'data-testid': 'why-panel', role: 'region', 'aria-label': 'Why am I seeing this?' }, 'Loading…');
    row.append(panel);
    try {
      const log = await this.client.getDeliveries(item.id);
      clear(panel);
      const steps = (log.resolution || []).map((step) => step.entityRef || 'everyone (a broadcast)');
      panel.append(
        h('p', { 'data-testid': 'why-path' }, `Reached you through: ${steps.join(' \u2192 ')}`),
        h(
          'ul',
          { class: 'why-channels' },
          (log.channels || []).map((channel) => {
            const parts = [`${channel.channel}: ${channel.status}`];
            if (channel.setting) parts.push(`(setting: ${channel.setting})`);
            if (channel.attempts > 1) parts.push(`after ${channel.attempts} attempts`);
            if (channel.lastError) parts.push(`\u2014 ${channel.lastError}`);
            return h('li', { 'data-testid': 'why-channel', dataset: { channel: channel.channel, status: channel.status } }, parts.join(' '));
          }),
        ),
      );
    } catch (error) {
      clear(panel);
      panel.append(h('p', { class: 'why-error' }, `Could not load the delivery log: ${error.message}`));
    }
  }

  _renderPager() {
    clear(this.pager);
    const { page, pageSize } = this.state;
    const from = this.total === 0 ? 0 : page * pageSize + 1;
    const to = Math.min(this.total, (page + 1) * pageSize);
    const lastPage = Math.max(0, Math.ceil(this.total / pageSize) - 1);
    const sizes = h(
      'select',
      {
        'data-testid': 'page-size',
        'aria-label': 'Rows per page',
        onchange: (event) => this._set({ pageSize: Number(event.target.value) }),
      },
      PAGE_SIZES.map((size) => h('option', { value: String(size), selected: size === pageSize }, String(size))),
    );
    // On narrow screens the words are visually hidden (CSS), so the pager stays on one line.
    this.pager.append(
      h('label', { class: 'pager-size' }, h('span', { class: 'pager-words' }, 'Rows per page '), sizes),
      h('span', { class: 'pager-range', 'data-testid': 'page-range' }, `${from}\u2013${to} of ${this.total}`),
      h(
        'button',
        { type: 'button', class: 'btn btn-small', 'data-testid': 'page-prev', 'aria-label': 'Previous page', disabled: page === 0, onclick: () => this._page(page - 1) },
        '\u2039', h('span', { class: 'pager-words' }, ' Prev'),
      ),
      h(
        'button',
        { type: 'button', class: 'btn btn-small', 'data-testid': 'page-next', 'aria-label': 'Next page', disabled: page >= lastPage, onclick: () => this._page(page + 1) },
        h('span', { class: 'pager-words' }, 'Next '), '\u203a',
      ),
    );
  }

  _page(page) {
    this.state = { ...this.state, page };
    this.selected.clear();
    this.reload();
  }

  _selectedItems() {
    return this.items.filter((item) => this.selected.has(item.id));
  }

  _renderBulk() {
    if (!this.bulkRead) return;
    const chosen = this._selectedItems();
    const anyRead = chosen.some((item) => item.read);
    const anySaved = chosen.some((item) => item.saved);
    const anyArchived = chosen.some((item) => item.archived);
    this.bulkRead.textContent = chosen.length && anyRead ? 'Mark selected unread' : 'Mark selected read';
    this.bulkSaved.textContent = chosen.length && anySaved ? 'Unsave selected' : 'Save selected';
    this.bulkArchive.textContent = chosen.length && anyArchived ? 'Unarchive selected' : 'Archive selected';
    this.bulkRead.disabled = chosen.length === 0;
    this.bulkSaved.disabled = chosen.length === 0;
    this.bulkArchive.disabled = chosen.length === 0;
    if (chosen.length === 0) this.bulkDelete.reset();
    this.bulkDelete.disabled = chosen.length === 0;
    this.markAll.disabled = !(this.unread > 0);
    this.selectAll.checked = this.items.length > 0 && chosen.length === this.items.length;
    this.selectAll.indeterminate = chosen.length > 0 && chosen.length < this.items.length;
  }

  _selectAll(checked) {
    this.selected = checked ? new Set(this.items.map((item) => item.id)) : new Set();
    this._render();
  }

  _bulkRead() {
    const chosen = this._selectedItems();
    if (chosen.length) this._update(chosen.map((item) => item.id), { read: !chosen.some((item) => item.read) });
  }

  _bulkSaved() {
    const chosen = this._selectedItems();
    if (chosen.length) this._update(chosen.map((item) => item.id), { saved: !chosen.some((item) => item.saved) });
  }

  _bulkArchive() {
    const chosen = this._selectedItems();
    if (chosen.length) this._update(chosen.map((item) => item.id), { archived: !chosen.some((item) => item.archived) });
  }

  /** Delete notifications (a broadcast for this user only), then refresh the count and the page. */
  async _delete(ids) {
    if (!ids.length) return;
    try {
      await this.client.deleteNotifications(ids);
      this.selected.clear();
      this.onChanged();
      await this.reload();
    } catch (error) {
      this.onError(error);
    }
  }

  async _markAllRead() {
    this.markAll.disabled = true;
    try {
      const unread = await this.client.getNotifications({ read: false });
      const ids = (unread.notifications || []).map((item) => item.id);
      if (ids.length) await this._update(ids, { read: true });
    } catch (error) {
      this.onError(error);
      this._renderBulk();
    }
  }

  async _update(ids, flags) {
    try {
      await this.client.updateNotifications({ ids, ...flags });
      this.selected.clear();
      this.onChanged();
      await this.reload();
    } catch (error) {
      this.onError(error);
    }
  }
}
