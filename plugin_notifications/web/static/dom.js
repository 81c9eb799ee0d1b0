// Small DOM helpers. Everything user-controlled goes in as text nodes or
// attribute values, never as HTML, so notification titles and descriptions
// cannot inject markup; links pass safeHref() first.

/**
 * Create an element: h('a', {class: 'x', href: safe, onclick: fn, dataset: {id}}, 'text', child).
 * Attributes named on* become event listeners; `null`/`undefined`/`false` attributes are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'checked' || key === 'disabled' || key === 'selected' || key === 'value') {
      el[key] = value;
    } else if (key === 'href' || key === 'src') {
      throw new Error('use safeLink() for links');
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Remove every child of `el`. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/**
 * `link` as an absolute URL if it is http(s) or relative (resolved against the page), else null.
 * `javascript:`, `data:`, `vbscript:` and anything else are refused.
 */
export function safeHref(link, base) {
  if (typeof link !== 'string' || !link.trim()) return null;
  let url;
  try {
    url = new URL(link, base || window.location.href);
  } catch (e) {
    return null;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
}

/** An <a> for a safe link (external ones open in a new tab), or a <span> when the link is unsafe or missing. */
export function safeLink(link, attrs, ...children) {
  const href = safeHref(link);
  if (!href) return h('span', attrs, ...children);
  const el = h('a', attrs, ...children);
  el.href = href;
  if (new URL(href).origin !== window.location.origin) {
    el.target = '_blank';
    el.rel = 'noopener noreferrer';
  }
  return el;
}

const UNITS = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['week', 7 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
];

/** "3 minutes ago", "just now". */
export function relativeTime(iso, now = Date.now()) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return '';
  const seconds = Math.round((then - now) / 1000);
  const format = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return format.format(Math.round(seconds / size), unit);
  }
  return 'just now';
}

/** Run `fn` at most once per `wait` ms; a call during the wait runs once when it ends. */
export function throttle(fn, wait) {
  let last = 0;
  let timer = null;
  return function throttled() {
    const remaining = last + wait - Date.now();
    if (remaining <= 0) {
      last = Date.now();
      fn();
    } else if (!timer) {
      timer = setTimeout(() => {
        timer = null;
        last = Date.now();
        fn();
      }, remaining);
    }
  };
}

/** Call `fn` `wait` ms after the last call. */
export function debounce(fn, wait) {
  let timer = null;
  return function debounced(...args) {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
}

// At most this many pop-ups at once; the oldest goes first.
const MAX_TOASTS = 3;

/**
 * Show a short message at the bottom right (bottom, full width, on narrow screens); `actions` are
 * [{label, onClick}]. `kind`: info, error, critical, high (each its own colour); `label` is shown as a
 * chip before the text, so the kind is not told by colour alone.
 */
export function toast(message, { kind = 'info', label, actions = [], timeout = 15000, testId } = {}) {
  const container = document.getElementById('toasts');
  if (!container) return () => {};
  const close = () => el.remove();
  const el = h(
    'div',
    { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-testid': testId || 'toast', dataset: { kind } },
    label ? h('span', { class: 'toast-label' }, label) : null,
    h('span', { class: 'toast-text' }, message),
    h('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss', onclick: close }, '\u00d7'),
    actions.length
      ? h(
          'div',
          { class: 'toast-actions' },
          actions.map((action) =>
            h('button', { class: 'toast-action', type: 'button', onclick: () => { close(); action.onClick(); } }, action.label),
          ),
        )
      : null,
  );
  container.append(el);
  while (container.children.length > MAX_TOASTS) container.firstElementChild.remove();
  if (timeout) setTimeout(close, timeout);
  return close;
}

/**
 * Keep `--toast-space` (on <html>) at the height the pop-ups take at the bottom of the window, so the
 * page can reserve it (CSS) and its end, the pagination, is never left under a pop-up.
 */
export function watchToastSpace() {
  const container = document.getElementById('toasts');
  if (!container || typeof ResizeObserver === 'undefined') return;
  const update = () => {
    const space = container.children.length ? window.innerHeight - container.getBoundingClientRect().top : 0;
    document.documentElement.style.setProperty('--toast-space', `${Math.max(0, Math.ceil(space))}px`);
  };
  new ResizeObserver(update).observe(container);
  window.addEventListener('resize', update);
  update();
}
