// Browser notifications (spec 15.2): shown for new notifications when the
// user enabled them here and the browser granted permission.

import { safeHref } from './dom.js';

export function supported() {
  return typeof window.Notification === 'function';
}

export function permission() {
  return supported() ? window.Notification.permission : 'unsupported';
}

/** Ask for permission when it was never asked; resolves to the permission. */
export async function requestPermission() {
  if (!supported()) return 'unsupported';
  if (window.Notification.permission !== 'default') return window.Notification.permission;
  try {
    return await window.Notification.requestPermission();
  } catch (e) {
    return window.Notification.permission;
  }
}

/**
 * Show `notification`; `tag` = its id, so several tabs show it once.
 * Clicking opens its (safe) link in a new tab and marks it read, or focuses the inbox on it.
 */
export function show(notification, { onOpenLink, onFocusInbox }) {
  if (permission() !== 'granted') return null;
  const payload = notification.payload || {};
  const shown = new window.Notification(String(payload.title || 'Notification'), {
    body: payload.description ? String(payload.description) : undefined,
    tag: notification.id,
  });
  shown.onclick = (event) => {
    event.preventDefault();
    const href = safeHref(payload.link);
    if (href) {
      window.open(href, '_blank', 'noopener');
      onOpenLink(notification);
    } else {
      window.focus();
      onFocusInbox(notification);
    }
    shown.close();
  };
  return shown;
}
