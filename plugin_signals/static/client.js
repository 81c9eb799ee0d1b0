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
 * Also loadable with require() (CommonJS) for tests and Node clients; pass
 * `WebSocket` in the options where there is no global one.
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
   * @param {(state: string) => void} [options.onStateChange]  'connecting' | 'open' | 'closed'
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
    this._onStateChange = options.onStateChange || function () {};
    this._subscriptions = new Map(); // id -> {channel, callback}
    this._nextId = 1;
    this._ws = null; // the socket, from creation until it closes
    this._connecting = false; // between the decision to connect and the socket's creation
    this._attempt = 0;
    this._reconnectTimer = null;
  }

  /**
   * Call `callback(message)` for every signal on `channel`.
   * Returns an unsubscribe function (it also has an `.unsubscribe` property,
   * so `subscribe(...).unsubscribe()` works as with Backstage's SignalApi).
   */
  SignalClient.prototype.subscribe = function (channel, callback) {
    if (!channel || typeof callback !== 'function') {
      throw new TypeError('subscribe(channel, callback) needs a channel and a callback');
    }
    var self = this;
    var id = this._nextId++;
    var known = this._hasChannel(channel);
    this._subscriptions.set(id, { channel: channel, callback: callback });
    if (!known) {
      this._send({ action: 'subscribe', channel: channel });
    }
    this._ensureConnection();
    var unsubscribe = function () {
      self._unsubscribe(id);
    };
    unsubscribe.unsubscribe = unsubscribe;
    return unsubscribe;
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
  SignalClient.prototype._send = function (data) {
    if (this._ws && this._ws.readyState === WS_OPEN) {
      this._ws.send(JSON.stringify(data));
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
    if (ws) {
      ws.close(WS_CLOSE_NORMAL);
      this._onStateChange('closed');
    }
  };

  SignalClient.prototype._ensureConnection = function () {
    if (this._ws || this._connecting || this._reconnectTimer) {
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
          if (self._subscriptions.size === 0) {
            return;
          }
          self._open(token);
        },
        function () {
          self._connecting = false;
          self._scheduleReconnect();
        },
      );
  };

  SignalClient.prototype._open = function (token) {
    var self = this;
    var ws = token ? new this._WebSocket(this._url, token) : new this._WebSocket(this._url);
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
      self._onStateChange('open');
      self._channels().forEach(function (channel) {
        ws.send(JSON.stringify({ action: 'subscribe', channel: channel }));
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
      self._scheduleReconnect();
    };
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
    this._scheduleReconnect();
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
