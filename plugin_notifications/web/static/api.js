// Client of /api/notifications, making the same calls as Backstage's
// NotificationsClient (spec 15.1). A 401 signs in again and retries once.

export class ResponseError extends Error {
  constructor(status, message, detail) {
    super(message);
    this.status = status;
    /** The API's own error message (Backstage's error.message), when it sent one. */
    this.detail = detail;
  }
}

function commonParams(params, opts) {
  if (opts.search) params.append('search', opts.search);
  if (opts.read === true || opts.read === false) params.append('read', String(opts.read));
  if (opts.saved === true || opts.saved === false) params.append('saved', String(opts.saved));
  if (opts.createdAfter) params.append('createdAfter', new Date(opts.createdAfter).toISOString());
  if (opts.minimumSeverity) params.append('minimumSeverity', opts.minimumSeverity);
  // Greenroom only: without it the API leaves archived notifications out.
  if (opts.archived === true || opts.archived === false) params.append('archived', String(opts.archived));
  return params;
}

export class NotificationsClient {
  /** @param {{baseUrl: string, identity: import('./auth.js').Identity}} options */
  constructor({ baseUrl, identity }) {
    this._base = baseUrl.replace(/\/$/, '');
    this._identity = identity;
  }

  /** GET /notifications: {notifications, totalCount}; `descriptionHtml: true` as for getNotification. */
  getNotifications(opts = {}) {
    const params = new URLSearchParams();
    if (opts.limit !== undefined) params.append('limit', String(opts.limit));
    if (opts.offset !== undefined) params.append('offset', String(opts.offset));
    if (opts.sort) params.append('orderField', `${opts.sort},${opts.sortOrder || 'desc'}`);
    commonParams(params, opts);
    if (opts.topic) params.append('topic', opts.topic);
    if (opts.descriptionHtml) params.append('descriptionHtml', 'true');
    return this._request('GET', `/notifications?${params}`);
  }

  /** GET /notifications/<id>; `descriptionHtml: true` adds the sanitized HTML of a Markdown description. */
  getNotification(id, opts = {}) {
    const query = opts.descriptionHtml ? '?descriptionHtml=true' : '';
    return this._request('GET', `/notifications/${encodeURIComponent(id)}${query}`);
  }

  /** GET /notifications/<id>/deliveries: {resolution, channels} ("Why am I seeing this?"). */
  getDeliveries(id) {
    return this._request('GET', `/notifications/${encodeURIComponent(id)}/deliveries`);
  }

  /** GET /status: {unread, read}. */
  getStatus() {
    return this._request('GET', '/status');
  }

  /** POST /notifications/update (archived: Greenroom only). */
  updateNotifications({ ids, read, saved, archived }) {
    return this._request('POST', '/notifications/update', { ids, read, saved, archived });
  }

  /** POST /notifications/delete (Greenroom only): {deleted: [ids]}; broadcasts go for this user only. */
  deleteNotifications(ids) {
    return this._request('POST', '/notifications/delete', { ids });
  }

  /** GET /settings. */
  getNotificationSettings() {
    return this._request('GET', '/settings');
  }

  /** POST /settings. */
  updateNotificationSettings(settings) {
    return this._request('POST', '/settings', settings);
  }

  /** GET /preferences (Greenroom only): {channels, available}, the caller's digests and quiet hours. */
  getPreferences() {
    return this._request('GET', '/preferences');
  }

  /** PUT /preferences (Greenroom only): replace the caller's entries; answers them as stored. */
  updatePreferences(preferences) {
    return this._request('PUT', '/preferences', preferences);
  }

  /** GET /topics: {topics}. */
  getTopics(opts = {}) {
    return this._request('GET', `/topics?${commonParams(new URLSearchParams(), opts)}`);
  }

  async _request(method, path, body, retried = false) {
    const token = await this._identity.getToken();
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(this._base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
    if (response.status === 401 && !retried) {
      this._identity.invalidate();
      return this._request(method, path, body, true);
    }
    let data = null;
    const text = await response.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = null;
      }
    }
    if (!response.ok) {
      const detail = (data && data.error && data.error.message) || undefined;
      throw new ResponseError(response.status, `Request failed with ${response.status}: ${detail || response.statusText}`, detail);
    }
    return data;
  }
}
