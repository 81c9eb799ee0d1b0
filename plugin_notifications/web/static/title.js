// The title counter (spec 15.3): "(N) " before document.title while N > 0.

const PREFIX = /^\(\d+\) /;

export class TitleCounter {
  constructor() {
    this._count = 0;
    this._enabled = false;
    this._observer = null;
    this._timer = null;
  }

  setEnabled(enabled) {
    if (enabled === this._enabled) return;
    this._enabled = enabled;
    if (enabled) {
      const title = document.querySelector('title');
      if (title && 'MutationObserver' in window) {
        this._observer = new MutationObserver(() => this._apply());
        this._observer.observe(title, { childList: true, characterData: true, subtree: true });
      }
      this._apply();
    } else {
      if (this._observer) this._observer.disconnect();
      this._observer = null;
      document.title = cleanTitle(document.title);
    }
  }

  setCount(count) {
    this._count = count;
    this._apply();
    // re-apply shortly after, to win over anything else that sets the title
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._apply(), 50);
  }

  _apply() {
    if (!this._enabled) return;
    const clean = cleanTitle(document.title);
    const wanted = this._count > 0 ? `(${this._count}) ${clean}` : clean;
    if (document.title !== wanted) document.title = wanted;
  }
}

export function cleanTitle(title) {
  return title.replace(PREFIX, '');
}
