/*
 * Greenroom signals client, served at /api/signals/client.js.
 *
 *   <script src="/api/signals/client.js"></script>
 *   <script>
 *     const signals = new GreenroomSignals.SignalClient({
 *       getToken: async () => (await fetch('/my-token')).text(),
 *     });
 *     const unsubscribe = signals.subscribe('notifications', message => console.log(message));
 *     // later: unsubscribe();
 *   </script>
 *
 * One shared WebSocket per client, opened on the first subscription and
 * closed (code 1000) when the last one is removed. The user token comes from
 * the async getToken() callback before every connection attempt and is sent
 * as the WebSocket subprotocol. A lost connection is re-opened with
 * exponential back-off (with jitter) for as long as subscriptions exist, and
 * every active channel is subscribed again. Several callbacks on one channel
 * share one server subscription, like Backstage's SignalClient/useSignal.
 *
 * Resuming: every frame's `position` is kept per channel, and each (re)subscribe
 * sends it as `since`, so the server replays what was missed while away; when it
 * cannot, it sends `resync` and the subscription's `onResync()` is called (the
 * page refetches). See docs/signals.md.
 *
 * Fallback: after `fallbackAfter` (2) WebSocket attempts in a row that never
 * opened (upgrade refused, proxy, timeout), the client switches to the
 * Server-Sent Events endpoint `/events`, read with fetch() so that the token
 * goes in the Authorization header, for the rest of its life.
 *
 * Also loadable with require() (CommonJS) for tests and Node clients; pass
 * `WebSocket` (and `fetch`) in the options where there is no global one.
 */
(function (root, factory) {
  'use strict';
  var api = factory(root);
  if (typeof module === 'object' && module.exports) {
    module.exports = api;
  } else {
    root.GreenroomSignals = api;
  }
})(typeof globalThis !== 'undefined' ? globalThis : self, function (root) {
  'use strict';

  var WS_CLOSE_NORMAL = 1000;
  var WS_OPEN = 1;

  // Positions are "<epoch>-<seq>"; opaque to applications, compared here only to drop duplicates.
  function parsePosition(position) {
    if (typeof position !== 'string') return null;
    var cut = position.lastIndexOf('-');
    var seq = Number(position.slice(cut + 1));
    return cut > 0 && Number.isSafeInteger(seq) ? { epoch: position.slice(0, cut), seq: seq } : null;
  }

  // Whether `position` is at or before `last` in the same epoch (already seen).
  function notAfter(position, last) {
    var a = parsePosition(position);
    var b = parsePosition(last);
    return !!(a && b && a.epoch === b.epoch && a.seq <= b.seq);
  }

  // The script's own URL tells where the signals API lives: /api/signals/client.js -> /api/signals
  var scriptBase = null;
  if (root && root.document && root.document.currentScript && root.document.currentScript.src) {
    scriptBase = new URL('.', root.document.currentScript.src).toString().replace(/\/$/, '');
  }

  function toWebSocketUrl(baseUrl) {
    var url = new URL(baseUrl);
    url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
    return url.toString().replace(/\/$/, '');
  }

  /**
   * @param {object} options
   * @param {() => Promise<string|undefined>} options.getToken  the user's token (async)
   * @param {string} [options.baseUrl]  the signals API URL (default: where this script was served from)
   * @param {number} [options.connectTimeout=5000]  ms to wait for a socket to open
   * @param {number} [options.minReconnectDelay=500]  first reconnect delay in ms
   * @param {number} [options.maxReconnectDelay=30000]  cap of the doubling reconnect delay in ms
   * @param {Function} [options.WebSocket]  WebSocket constructor (default: the global one)
   * @param {Function} [options.fetch]  fetch implementation for the SSE fallback (default: the global one)
   * @param {(state: string, transport: string) => void} [options.onStateChange]
   *     'connecting' | 'open' | 'closed', and 'websocket' | 'sse'
   * @param {boolean} [options.resume=true]  subscribe with `since` (false: Backstage's plain subscribe)
   * @param {string} [options.transport='auto']  'auto' | 'websocket' | 'sse'
   * @param {number} [options.fallbackAfter=2]  failed WebSocket attempts in a row before 'auto' uses SSE
   * @param {(channel: string) => void} [options.onResync]  called for every resync, besides the subscriptions' own
   */
  function SignalClient(options) {
    options = options || {};
    if (typeof options.getToken !== 'function') {
      throw new TypeError('SignalClient needs a getToken() callback');
    }
    var baseUrl = options.baseUrl || scriptBase;
    if (!baseUrl) {
      throw new TypeError('SignalClient needs a baseUrl, e.g. https://backstage.example.com/api/signals');
    }
    this._url = toWebSocketUrl(baseUrl);
    this._getToken = options.getToken;
    this._WebSocket = options.WebSocket || root.WebSocket;
    this._connectTimeout = options.connectTimeout || 5000;
    this._minDelay = options.minReconnectDelay || 500;
    this._maxDelay = options.maxReconnectDelay || 30000;
    var onStateChange = options.onStateChange || function () {};
    var self = this;
    this._onStateChange = function (state) {
      onStateChange(state, self.transport);
    };
    this._fetch = options.fetch || (root.fetch ? root.fetch.bind(root) : null);
    this._resume = options.resume !== false;
    this._fallbackAfter = options.fallbackAfter || 2;
    this._onResync = options.onResync || function () {};
    /** The transport in use: 'websocket', or 'sse' after the fallback (or with transport: 'sse'). */
    this.transport = options.transport === 'sse' ? 'sse' : 'websocket';
    this._fallback = (options.transport || 'auto') === 'auto';
    this._wsFailures = 0; // WebSocket attempts in a row that never opened
    this._positions = new Map(); // channel -> last position seen
    this._sse = null; // the event stream: {controller, channels}
    this._sseRestart = false;
    this._subscriptions = new Map(); // id -> {channel, callback, onResync}
    this._nextId = 1;
    this._ws = null; // the socket, from creation until it closes
    this._connecting = false; // between the decision to connect and the socket's creation
    this._attempt = 0;
    this._reconnectTimer = null;
  }

  /**
   * Call `callback(message)` for every signal on `channel`.
   * `options.onResync()` is called when the server could not replay what was
   * missed on `channel` (refetch then). Returns an unsubscribe function (it
   * also has an `.unsubscribe` property, so `subscribe(...).unsubscribe()`
   * works as with Backstage's SignalApi).
   */
  SignalClient.prototype.subscribe = function (channel, callback, options) {
    if (!channel || typeof callback !== 'function') {
      throw new TypeError('subscribe(channel, callback) needs a channel and a callback');
    }
    var self = this;
    var id = this._nextId++;
    var known = this._hasChannel(channel);
    var onResync = options && typeof options.onResync === 'function' ? options.onResync : null;
    this._subscriptions.set(id, { channel: channel, callback: callback, onResync: onResync });
    if (!known) {
      this._send(this._subscribeFrame(channel));
    }
    this._ensureConnection();
    var unsubscribe = function () {
      self._unsubscribe(id);
    };
    unsubscribe.unsubscribe = unsubscribe;
    return unsubscribe;
  };

  /** The last position seen on `channel` (a string, or undefined): what a resubscribe sends as `since`. */
  SignalClient.prototype.position = function (channel) {
    return this._positions.get(channel);
  };

  SignalClient.prototype._subscribeFrame = function (channel) {
    if (!this._resume) {
      return { action: 'subscribe', channel: channel };
    }
    return { action: 'subscribe', channel: channel, since: this._positions.get(channel) || '' };
  };

  /** Remove every subscription and close the socket. */
  SignalClient.prototype.close = function () {
    this._subscriptions.clear();
    this._shutdown();
  };

  SignalClient.prototype._unsubscribe = function (id) {
    var sub = this._subscriptions.get(id);
    if (!sub) {
      return;
    }
    this._subscriptions.delete(id);
    if (!this._hasChannel(sub.channel)) {
      this._send({ action: 'unsubscribe', channel: sub.channel });
      this._positions.delete(sub.channel);
    }
    if (this._subscriptions.size === 0) {
      this._shutdown();
    }
  };

  SignalClient.prototype._hasChannel = function (channel) {
    var found = false;
    this._subscriptions.forEach(function (sub) {
      if (sub.channel === channel) {
        found = true;
      }
    });
    return found;
  };

  SignalClient.prototype._channels = function () {
    var channels = new Set();
    this._subscriptions.forEach(function (sub) {
      channels.add(sub.channel);
    });
    return channels;
  };

  // Frames are only sent on an open socket; on (re)connect every channel is subscribed anew.
  // An event stream's channels are fixed per request: it is re-opened with the new set.
  SignalClient.prototype._send = function (data) {
    if (this._ws && this._ws.readyState === WS_OPEN) {
      this._ws.send(JSON.stringify(data));
    } else if (this._sse) {
      this._restartSse();
    }
  };

  SignalClient.prototype._shutdown = function () {
    if (this._reconnectTimer) {
      clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
    }
    this._attempt = 0;
    var ws = this._ws;
    this._ws = null;
    var sse = this._sse;
    this._sse = null;
    if (ws) {
      ws.close(WS_CLOSE_NORMAL);
    }
    if (sse) {
      sse.controller.abort();
    }
    if (ws || sse) {
      this._onStateChange('closed');
    }
  };

  SignalClient.prototype._ensureConnection = function () {
    if (this._ws || this._sse || this._connecting || this._reconnectTimer) {
      return;
    }
    this._connect();
  };

  SignalClient.prototype._connect = function () {
    var self = this;
    this._connecting = true;
    this._onStateChange('connecting');
    Promise.resolve()
      .then(function () {
        return self._getToken();
      })
      .then(
        function (token) {
          self._connecting = false;
          if (self._subscriptions.size === 0 || self._ws || self._sse) {
            return;
          }
          if (self.transport === 'sse') {
            self._openSse(token);
          } else {
            self._open(token);
          }
        },
        function () {
          self._connecting = false;
          self._scheduleReconnect();
        },
      );
  };

  SignalClient.prototype._open = function (token) {
    var self = this;
    var ws;
    try {
      ws = token ? new this._WebSocket(this._url, token) : new this._WebSocket(this._url);
    } catch (e) {
      this._wsFailed(); // no WebSocket at all (blocked, or not supported)
      return;
    }
    this._ws = ws;
    var timer = setTimeout(function () {
      if (ws.readyState !== WS_OPEN && self._ws === ws) {
        self._abandon(ws);
      }
    }, this._connectTimeout);

    ws.onopen = function () {
      clearTimeout(timer);
      if (self._ws !== ws) {
        return;
      }
      self._attempt = 0;
      self._wsFailures = 0;
      ws.opened = true;
      self._onStateChange('open');
      self._channels().forEach(function (channel) {
        ws.send(JSON.stringify(self._subscribeFrame(channel)));
      });
    };
    ws.onmessage = function (event) {
      self._handleMessage(event.data);
    };
    ws.onerror = function () {
      // A close event always follows; reconnecting happens there.
    };
    ws.onclose = function () {
      clearTimeout(timer);
      if (self._ws !== ws) {
        return; // closed on purpose by _shutdown, or replaced
      }
      self._ws = null;
      self._onStateChange('closed');
      if (ws.opened) {
        self._scheduleReconnect();
      } else {
        self._wsFailed();
      }
    };
  };

  // A WebSocket attempt that never opened; enough of them in a row switch 'auto' to SSE.
  SignalClient.prototype._wsFailed = function () {
    this._wsFailures += 1;
    if (this._fallback && this._wsFailures >= this._fallbackAfter && this._fetch) {
      this.transport = 'sse';
      this._attempt = 0;
    }
    this._scheduleReconnect();
  };

  SignalClient.prototype._eventsUrl = function (channels) {
    var base = this._url.replace(/^ws/, 'http') + '/events?';
    return base + channels.map(function (c) { return 'channel=' + encodeURIComponent(c); }).join('&');
  };

  // Last-Event-ID of a stream of several channels: the earliest of their positions.
  SignalClient.prototype._streamSince = function (channels) {
    var since = '';
    var positions = this._positions;
    channels.forEach(function (channel) {
      var position = positions.get(channel);
      if (position && (!since || notAfter(position, since))) {
        since = position;
      }
    });
    return since;
  };

  SignalClient.prototype._openSse = function (token) {
    var self = this;
    var channels = Array.from(this._channels()).sort();
    var stream = { controller: new AbortController(), channels: channels };
    this._sse = stream;
    var headers = { Accept: 'text/event-stream' };
    if (token) headers.Authorization = 'Bearer ' + token;
    var since = this._resume ? this._streamSince(channels) : '';
    if (since) headers['Last-Event-ID'] = since;
    var timer = setTimeout(function () {
      stream.controller.abort();
    }, this._connectTimeout);
    this._fetch(this._eventsUrl(channels), { headers: headers, signal: stream.controller.signal, cache: 'no-store' })
      .then(function (response) {
        clearTimeout(timer);
        if (!response.ok || !response.body) {
          throw new Error('event stream answered HTTP ' + response.status);
        }
        if (self._sse !== stream) {
          stream.controller.abort();
          return null;
        }
        self._attempt = 0;
        self._onStateChange('open');
        return self._readSse(stream, response.body.getReader());
      })
      .then(
        function () {
          self._sseEnded(stream);
        },
        function () {
          clearTimeout(timer);
          self._sseEnded(stream);
        },
      );
  };

  // Parse "field: value" lines into events; each event's data is a frame (as on the WebSocket).
  SignalClient.prototype._readSse = function (stream, reader) {
    var self = this;
    var decoder = new TextDecoder();
    var buffer = '';
    var data = [];
    function line(text) {
      if (text === '') {
        if (data.length && self._sse === stream) self._handleMessage(data.join('\n'));
        data = [];
        return;
      }
      if (text.charAt(0) === ':') return; // comment (heartbeat)
      var colon = text.indexOf(':');
      var field = colon < 0 ? text : text.slice(0, colon);
      var value = colon < 0 ? '' : text.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') data.push(value);
    }
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done || self._sse !== stream) {
          return;
        }
        buffer += decoder.decode(chunk.value, { stream: true });
        var lines = buffer.split(/\r\n|\r|\n/);
        buffer = lines.pop();
        lines.forEach(line);
        return pump();
      });
    }
    return pump();
  };

  SignalClient.prototype._sseEnded = function (stream) {
    if (this._sse !== stream) {
      return; // closed on purpose, or replaced
    }
    this._sse = null;
    this._onStateChange('closed');
    this._scheduleReconnect();
  };

  // Re-open the event stream with the current channels (once, after the current task).
  SignalClient.prototype._restartSse = function () {
    var self = this;
    if (this._sseRestart) return;
    this._sseRestart = true;
    Promise.resolve().then(function () {
      self._sseRestart = false;
      var sse = self._sse;
      if (!sse || self._subscriptions.size === 0) return;
      self._sse = null;
      sse.controller.abort();
      self._connect();
    });
  };

  // Give up on a socket that did not open in time. Some implementations never fire
  // `close` for a socket closed while connecting, so reconnecting does not wait for it.
  SignalClient.prototype._abandon = function (ws) {
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    try {
      ws.close();
    } catch (e) {
      // already closed
    }
    this._ws = null;
    this._onStateChange('closed');
    this._wsFailed();
  };

  SignalClient.prototype._handleMessage = function (data) {
    var frame;
    try {
      frame = JSON.parse(data);
    } catch (e) {
      return;
    }
    if (!frame || !frame.channel) {
      return;
    }
    var channel = frame.channel;
    if (frame.action === 'position' || frame.action === 'resync') {
      if (typeof frame.position === 'string') this._positions.set(channel, frame.position);
      if (frame.action === 'resync') this._resynced(channel);
      return;
    }
    if (typeof frame.position === 'string') {
      if (notAfter(frame.position, this._positions.get(channel))) {
        return; // seen already (a stream of several channels resumes from the earliest)
      }
      if (this._hasChannel(channel)) this._positions.set(channel, frame.position);
    }
    this._subscriptions.forEach(function (sub) {
      if (sub.channel === frame.channel) {
        try {
          sub.callback(frame.message);
        } catch (e) {
          // one failing callback must not starve the others
        }
      }
    });
  };

  SignalClient.prototype._resynced = function (channel) {
    var onResync = this._onResync;
    try {
      onResync(channel);
    } catch (e) {
      // isolated like message callbacks
    }
    this._subscriptions.forEach(function (sub) {
      if (sub.channel === channel && sub.onResync) {
        try {
          sub.onResync();
        } catch (e) {
          // one failing callback must not starve the others
        }
      }
    });
  };

  /** The delay before reconnect attempt `attempt` (0-based): doubling, capped, with 50-100 % jitter. */
  SignalClient.prototype.reconnectDelay = function (attempt) {
    var delay = Math.min(this._maxDelay, this._minDelay * Math.pow(2, attempt));
    return delay / 2 + Math.random() * (delay / 2);
  };

  SignalClient.prototype._scheduleReconnect = function () {
    var self = this;
    if (this._subscriptions.size === 0 || this._reconnectTimer) {
      return;
    }
    var delay = this.reconnectDelay(this._attempt);
    this._attempt += 1;
    this._reconnectTimer = setTimeout(function () {
      self._reconnectTimer = null;
      if (self._subscriptions.size > 0 && !self._ws && !self._connecting) {
        self._connect();
      }
    }, delay);
  };

  return {
    SignalClient: SignalClient,
    createSignalClient: function (options) {
      return new SignalClient(options);
    },
  };
});
