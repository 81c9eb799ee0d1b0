// Unit tests of plugin_signals/static/client.js with a fake WebSocket (run: node --test tests/signals/js).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { SignalClient } = require(path.join(__dirname, '../../../plugin_signals/static/client.js'));

class FakeWebSocket {
  constructor(url, protocol) {
    this.url = url;
    this.protocol = protocol;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = undefined;
    FakeWebSocket.instances.push(this);
  }
  send(data) {
    assert.equal(this.readyState, 1, 'send on a socket that is not open');
    this.sent.push(JSON.parse(data));
  }
  close(code) {
    this.closedWith = code;
    this.readyState = 3;
    if (this.onclose) this.onclose({ code: code === undefined ? 1005 : code });
  }
  // test helpers
  serverOpen() {
    this.readyState = 1;
    this.onopen && this.onopen({});
  }
  serverClose(code) {
    this.readyState = 3;
    this.onclose && this.onclose({ code });
  }
  serverSend(frame) {
    this.onmessage && this.onmessage({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
  }
}
FakeWebSocket.instances = [];

const tick = () => new Promise(resolve => setImmediate(resolve));
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

function makeClient(extra = {}) {
  FakeWebSocket.instances = [];
  let tokens = 0;
  const client = new SignalClient({
    baseUrl: 'http://localhost:7007/api/signals',
    getToken: async () => `token-${++tokens}`,
    WebSocket: FakeWebSocket,
    minReconnectDelay: 10,
    maxReconnectDelay: 40,
    connectTimeout: 200,
    fetch: async () => {
      throw new Error('no network in unit tests');
    },
    ...extra,
  });
  return client;
}

test('connects lazily with the token as subprotocol and ws: URL', async () => {
  const client = makeClient();
  assert.equal(FakeWebSocket.instances.length, 0);
  client.subscribe('c', () => {});
  await tick();
  assert.equal(FakeWebSocket.instances.length, 1);
  const ws = FakeWebSocket.instances[0];
  assert.equal(ws.url, 'ws://localhost:7007/api/signals');
  assert.equal(ws.protocol, 'token-1');
  ws.serverOpen();
  assert.deepEqual(ws.sent, [{ action: 'subscribe', channel: 'c', since: '' }]);
  client.close();
});

test('https base URLs use wss:', async () => {
  const client = makeClient({ baseUrl: 'https://example.com/api/signals/' });
  client.subscribe('c', () => {});
  await tick();
  assert.equal(FakeWebSocket.instances[0].url, 'wss://example.com/api/signals');
  client.close();
});

test('two callbacks share one server subscription; the last unsubscribe sends unsubscribe and closes 1000', async () => {
  const client = makeClient();
  const a = [];
  const b = [];
  const unsubA = client.subscribe('c', m => a.push(m));
  const sub = client.subscribe('c', m => b.push(m));
  await tick();
  const ws = FakeWebSocket.instances[0];
  ws.serverOpen();
  assert.deepEqual(ws.sent, [{ action: 'subscribe', channel: 'c', since: '' }]);
  ws.serverSend({ channel: 'c', message: { n: 1 } });
  assert.deepEqual(a, [{ n: 1 }]);
  assert.deepEqual(b, [{ n: 1 }]);
  unsubA();
  assert.equal(ws.sent.length, 1, 'removing one of two callbacks sends nothing');
  ws.serverSend({ channel: 'c', message: { n: 2 } });
  assert.deepEqual(a, [{ n: 1 }]);
  sub.unsubscribe(); // Backstage's SignalSubscriber shape works too
  assert.deepEqual(ws.sent[1], { action: 'unsubscribe', channel: 'c' });
  assert.equal(ws.closedWith, 1000);
  await sleep(50);
  assert.equal(FakeWebSocket.instances.length, 1, 'no reconnect after closing on purpose');
});

test('frames for other channels, without a channel, or not JSON are ignored; a throwing callback is isolated', async () => {
  const client = makeClient();
  const got = [];
  client.subscribe('c', () => {
    throw new Error('boom');
  });
  client.subscribe('c', m => got.push(m));
  await tick();
  const ws = FakeWebSocket.instances[0];
  ws.serverOpen();
  ws.serverSend({ channel: 'other', message: { x: 1 } });
  ws.serverSend({ message: { x: 2 } });
  ws.serverSend('not json');
  ws.serverSend({ channel: 'c', message: { x: 3 } });
  assert.deepEqual(got, [{ x: 3 }]);
  client.close();
});

test('reconnects after an abnormal close and resubscribes every channel with a fresh token', async () => {
  const client = makeClient();
  client.subscribe('a', () => {});
  client.subscribe('b', () => {});
  client.subscribe('b', () => {});
  await tick();
  const first = FakeWebSocket.instances[0];
  first.serverOpen();
  assert.equal(first.sent.length, 2);
  first.serverClose(1012); // server restart
  await sleep(30);
  assert.equal(FakeWebSocket.instances.length, 2);
  const second = FakeWebSocket.instances[1];
  assert.equal(second.protocol, 'token-2');
  second.serverOpen();
  assert.deepEqual(
    second.sent.map(f => f.channel).sort(),
    ['a', 'b'],
  );
  assert.ok(second.sent.every(f => f.action === 'subscribe'));
  client.close();
});

test('reconnects even after a 1000/1001 close from the server while subscriptions exist', async () => {
  const client = makeClient();
  client.subscribe('a', () => {});
  await tick();
  FakeWebSocket.instances[0].serverOpen();
  FakeWebSocket.instances[0].serverClose(1001);
  await sleep(30);
  assert.equal(FakeWebSocket.instances.length, 2);
  client.close();
});

test('back-off doubles up to the cap while the server stays down', async () => {
  const client = makeClient({ minReconnectDelay: 100, maxReconnectDelay: 1000 });
  const delays = [0, 1, 2, 3, 4, 5].map(n => client.reconnectDelay(n));
  const caps = [100, 200, 400, 800, 1000, 1000];
  delays.forEach((d, i) => {
    assert.ok(d >= caps[i] / 2 && d <= caps[i], `attempt ${i}: ${d} not in [${caps[i] / 2}, ${caps[i]}]`);
  });
});

test('a socket that never opens is closed after connectTimeout and retried', async () => {
  const client = makeClient({ connectTimeout: 20 });
  client.subscribe('a', () => {});
  await tick();
  await sleep(60);
  assert.ok(FakeWebSocket.instances.length >= 2, 'retried after the connect timeout');
  assert.equal(FakeWebSocket.instances[0].readyState, 3);
  client.close();
});

test('a failing getToken is retried with back-off', async () => {
  FakeWebSocket.instances = [];
  let calls = 0;
  const client = new SignalClient({
    baseUrl: 'http://localhost/api/signals',
    WebSocket: FakeWebSocket,
    minReconnectDelay: 5,
    getToken: async () => {
      calls += 1;
      if (calls < 3) throw new Error('not signed in yet');
      return 'tok';
    },
  });
  client.subscribe('a', () => {});
  await sleep(100);
  assert.equal(calls, 3);
  assert.equal(FakeWebSocket.instances.length, 1);
  assert.equal(FakeWebSocket.instances[0].protocol, 'tok');
  client.close();
});

test('a channel subscribed while the socket is open is sent at once; while connecting, on open', async () => {
  const client = makeClient();
  client.subscribe('a', () => {});
  client.subscribe('b', () => {}); // before the socket exists
  await tick();
  const ws = FakeWebSocket.instances[0];
  ws.serverOpen();
  client.subscribe('c', () => {});
  assert.deepEqual(ws.sent.map(f => f.channel), ['a', 'b', 'c']);
  client.close();
});

test('getToken is required', () => {
  assert.throws(() => new SignalClient({ baseUrl: 'http://x/api/signals' }), /getToken/);
});

// -- resuming ------------------------------------------------------------------------------------

test('positions are kept per channel and sent as since when resubscribing; resume: false sends plain frames', async () => {
  const client = makeClient();
  const got = [];
  client.subscribe('a', m => got.push(m));
  await tick();
  const first = FakeWebSocket.instances[0];
  first.serverOpen();
  first.serverSend({ action: 'position', channel: 'a', position: 'e1-4' });
  first.serverSend({ channel: 'a', message: { n: 5 }, position: 'e1-5' });
  first.serverSend({ channel: 'a', message: { n: 5 }, position: 'e1-5' }); // a duplicate is dropped
  assert.deepEqual(got, [{ n: 5 }]);
  assert.equal(client.position('a'), 'e1-5');
  first.serverClose(1006);
  await sleep(30);
  const second = FakeWebSocket.instances[1];
  second.serverOpen();
  assert.deepEqual(second.sent, [{ action: 'subscribe', channel: 'a', since: 'e1-5' }]);
  client.close();

  const plain = makeClient({ resume: false });
  plain.subscribe('a', () => {});
  await tick();
  FakeWebSocket.instances[0].serverOpen();
  assert.deepEqual(FakeWebSocket.instances[0].sent, [{ action: 'subscribe', channel: 'a' }]);
  plain.close();
});

test('resync calls the subscription onResync and the client onResync, and moves the position', async () => {
  const resyncs = [];
  const client = makeClient({ onResync: channel => resyncs.push(`client:${channel}`) });
  client.subscribe('a', () => {}, { onResync: () => resyncs.push('sub:a') });
  client.subscribe('b', () => {}, { onResync: () => resyncs.push('sub:b') });
  await tick();
  const ws = FakeWebSocket.instances[0];
  ws.serverOpen();
  ws.serverSend({ action: 'resync', channel: 'a', position: 'e2-9' });
  assert.deepEqual(resyncs, ['client:a', 'sub:a']);
  assert.equal(client.position('a'), 'e2-9');
  client.close();
});

/** A fetch() that answers the events endpoint with a stream we write SSE text into. */
function fakeFetch() {
  const calls = [];
  const fetch = async (url, init) => {
    let controller;
    const body = new ReadableStream({ start: c => (controller = c) });
    init.signal.addEventListener('abort', () => {
      try {
        controller.error(new Error('aborted'));
      } catch (e) {}
    });
    const call = { url, headers: init.headers, write: text => controller.enqueue(new TextEncoder().encode(text)) };
    calls.push(call);
    return { ok: true, status: 200, body };
  };
  return { fetch, calls };
}

test('after two WebSocket attempts that never open, the client reads the SSE endpoint with its token and position', async () => {
  const { fetch, calls } = fakeFetch();
  const states = [];
  const client = makeClient({ fetch, onStateChange: (state, transport) => states.push(`${state}/${transport}`) });
  const got = [];
  client.subscribe('b', m => got.push(m));
  client.subscribe('a', m => got.push(m));
  await tick();
  FakeWebSocket.instances[0].serverOpen();
  FakeWebSocket.instances[0].serverSend({ channel: 'a', message: { n: 1 }, position: 'e1-1' });
  FakeWebSocket.instances[0].serverClose(1012);
  await sleep(30);
  FakeWebSocket.instances[1].serverClose(1006); // the upgrade is refused from now on
  await sleep(30);
  FakeWebSocket.instances[2].serverClose(1006);
  await sleep(40);
  assert.equal(FakeWebSocket.instances.length, 3);
  assert.equal(client.transport, 'sse');
  assert.equal(calls.length, 1);
  assert.equal(calls[0].url, 'http://localhost:7007/api/signals/events?channel=a&channel=b');
  assert.match(calls[0].headers.Authorization, /^Bearer token-\d$/);
  assert.equal(calls[0].headers['Last-Event-ID'], 'e1-1');
  calls[0].write(': connected\n\n');
  calls[0].write('id: e1-2\ndata: {"channel":"a","message":{"n":2},"position":"e1-2"}\n\n');
  calls[0].write('id: e1-3\nevent: position\ndata: {"action":"position","channel":"b","position":"e1-3"}\n');
  calls[0].write('\nid: e1-4\ndata: {"channel":"b","mess');
  calls[0].write('age":{"n":4},"position":"e1-4"}\n\n');
  await sleep(10);
  assert.deepEqual(got, [{ n: 1 }, { n: 2 }, { n: 4 }]);
  assert.equal(client.position('b'), 'e1-4');
  assert.ok(states.includes('open/sse'));

  client.subscribe('c', () => {}); // a new channel re-opens the stream with it
  await sleep(10);
  assert.equal(calls.length, 2);
  assert.equal(calls[1].url, 'http://localhost:7007/api/signals/events?channel=a&channel=b&channel=c');
  assert.equal(calls[1].headers['Last-Event-ID'], 'e1-2');
  client.close();
  assert.equal(FakeWebSocket.instances.length, 3, 'SSE for the rest of the client');
});
