// Notification descriptions: plain text as a text node, Markdown as the HTML the server rendered.
//
// A Markdown description arrives as `descriptionHtml` (asked for with ?descriptionHtml=true): rendered by
// markdown-it-py with raw HTML off and sanitized by nh3. The page still never assigns HTML to a live
// element. It parses the string into an inert document (DOMParser: no script runs, nothing loads) and
// rebuilds it node by node through its own allow-list, links through safeHref(), so a server-side slip
// cannot become markup here either. A description without `descriptionHtml` is plain text, never parsed.

import { h, safeHref } from './dom.js';

/** Elements rebuilt as they are (the server's nh3 allow-list); anything else keeps only its text. */
const TAGS = new Set([
  'a', 'p', 'br', 'hr', 'strong', 'em', 'del', 's', 'code', 'pre', 'blockquote',
  'ul', 'ol', 'li', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6',
  'table', 'thead', 'tbody', 'tr', 'th', 'td',
]);
/** Elements dropped with their content. */
const DROPPED = new Set(['script', 'style', 'template', 'noscript', 'iframe', 'object', 'embed', 'svg', 'math']);
/** Attributes kept per element (href is handled apart). */
const ATTRIBUTES = { a: ['title'], ol: ['start'], th: ['align'], td: ['align'] };

/** An http(s) or relative link resolved against the page, or a mailto: link; null for anything else. */
function linkHref(raw) {
  if (typeof raw === 'string' && /^\s*mailto:/i.test(raw)) {
    try {
      const url = new URL(raw.trim());
      return url.protocol === 'mailto:' ? url.href : null;
    } catch (e) {
      return null;
    }
  }
  return safeHref(raw);
}

function rebuild(from, to) {
  for (const node of from.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) {
      to.append(document.createTextNode(node.data));
      continue;
    }
    if (node.nodeType !== Node.ELEMENT_NODE) continue; // comments, processing instructions
    const tag = node.localName;
    if (DROPPED.has(tag)) continue;
    if (!TAGS.has(tag)) {
      rebuild(node, to);
      continue;
    }
    const el = document.createElement(tag);
    for (const name of ATTRIBUTES[tag] || []) {
      const value = node.getAttribute(name);
      if (value !== null) el.setAttribute(name, value);
    }
    if (tag === 'a') {
      const href = linkHref(node.getAttribute('href'));
      if (href) {
        el.href = href;
        if (href.startsWith('http') && new URL(href).origin !== window.location.origin) {
          el.target = '_blank';
        }
        el.rel = 'noopener noreferrer';
      }
    }
    rebuild(node, el);
    to.append(el);
  }
}

/** A DocumentFragment of the allowed markup in `html` (sanitized server HTML). */
export function sanitizedFragment(html) {
  const inert = new DOMParser().parseFromString(`<!doctype html><body>${html}`, 'text/html');
  const fragment = document.createDocumentFragment();
  rebuild(inert.body, fragment);
  return fragment;
}

/**
 * The description element of a notification row, or null without a description:
 * a <div> of rebuilt markup for a Markdown description, else a <p> holding the text as it was sent.
 */
export function descriptionElement(item) {
  const payload = item.payload || {};
  if (!payload.description) return null;
  const attrs = { class: 'row-description', 'data-testid': 'notification-description' };
  if (typeof item.descriptionHtml !== 'string') return h('p', { ...attrs, dataset: { format: 'plain' } }, payload.description);
  const el = h('div', { ...attrs, class: 'row-description rich', dataset: { format: 'markdown' } });
  el.append(sanitizedFragment(item.descriptionHtml));
  return el;
}
