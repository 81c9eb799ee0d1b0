// Backstage's own frontend clients against a running Greenroom: every public method of
// NotificationsClient (@backstage/plugin-notifications 0.6.2) and SignalClient
// (@backstage/plugin-signals 0.0.37), unchanged, with small stand-ins for the app's
// discoveryApi, fetchApi and identityApi. Asserts as it goes; prints one JSON line per method.
// Usage: node --experimental-websocket clients.mjs <base URL> <static service token>
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
// The client classes only: the packages' index modules pull in React, which is not installed.
import { NotificationsClient } from './node_modules/@backstage/plugin-notifications/dist/api/NotificationsClient.esm.js';
import { SignalClient } from './node_modules/@backstage/plugin-signals/dist/api/SignalClient.esm.js';

const [baseUrl, serviceToken] = process.argv.slice(2);
const GUEST = 'user:default/guest';
// Two unique search terms: one for the rows the list assertions count, one for the signal pings.
const tag = `npm${randomUUID().slice(0, 8)}`;
const pingTag = `ping${randomUUID().slice(0, 8)}`;
const called = new Set();
const report = (method, detail = {}) => {
  called.add(method);
  process.stdout.write(JSON.stringify({ method, ...detail }) + '\n');
};

// The guest signs in as the Backstage app would (the guest provider).
const refresh = await fetch(`${baseUrl}/api/auth/guest/refresh`);
assert.equal(refresh.status, 200);
const userToken = (await refresh.json()).backstageIdentity.token;

/**
 * fetch() over a new TCP connection per request, so that with several workers the requests
 * spread over them (and a signal often has to cross from one worker to another).
 */
function freshFetch(url, init = {}) {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: init.method || 'GET', headers: init.headers, agent: false }, response => {
      const chunks = [];
      response.on('data', chunk => chunks.push(chunk));
      response.on('end', () => {
        const body = response.statusCode === 204 ? null : Buffer.concat(chunks);
        resolve(new Response(body, { status: response.statusCode, headers: response.headers }));
      });
    });
    request.on('error', reject);
    request.end(init.body);
  });
}

const discoveryApi = { getBaseUrl: async plugin => `${baseUrl}/api/${plugin}` };
const fetchApi = {
  fetch: (url, init = {}) =>
    freshFetch(url, { ...init, headers: { ...init.headers, Authorization: `Bearer ${userToken}` } }),
};
const identityApi = { getCredentials: async () => ({ token: userToken }) };

/** Send a notification as a backend service would; answers the created rows. */
async function send(payload, recipients = { type: 'entity', entityRef: GUEST }) {
  const response = await freshFetch(`${baseUrl}/api/notifications`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${serviceToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ recipients, payload }),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return response.json();
}

/** Signals as they arrive on one subscription, awaitable by predicate. */
function inbox() {
  const messages = [];
  const waiters = [];
  return {
    messages,
    push(message) {
      messages.push(message);
      for (const waiter of waiters.splice(0)) waiter();
    },
    async waitFor(predicate, what, timeoutMs = 10000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.find(predicate);
        if (found) return found;
        const left = deadline - Date.now();
        assert.ok(left > 0, `no signal ${what} within ${timeoutMs} ms; got ${JSON.stringify(messages)}`);
        await new Promise(resolve => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => { clearTimeout(timer); resolve(); });
        });
      }
    },
  };
}

// --- SignalClient: subscribe and receive a real new_notification signal --------------------
const signals = SignalClient.create({ identity: identityApi, discoveryApi, connectTimeout: 5000, reconnectTimeout: 200 });
const kept = inbox();
const dropped = inbox();
const keptSub = signals.subscribe('notifications', message => kept.push(message));
const droppedSub = signals.subscribe('notifications', message => dropped.push(message));
report('SignalClient.create');
// The client connects in the background and has no "ready" event: send until a signal arrives.
let first;
for (let attempt = 0; !first; attempt++) {
  assert.ok(attempt < 50, 'the SignalClient never received a signal');
  const [created] = await send({ title: `${pingTag} ${attempt}` });
  first = await kept
    .waitFor(m => m.notification_id === created.id, `for ${created.id}`, 500)
    .catch(() => undefined);
}
assert.deepEqual(Object.keys(first).sort(), ['action', 'notification_id']);
assert.equal(first.action, 'new_notification');
report('SignalClient.subscribe', { signal: first.action });

// unsubscribe: the other subscription on the same channel keeps receiving, this one does not.
droppedSub.unsubscribe();
const [afterUnsubscribe] = await send({ title: `${pingTag} after unsubscribe` });
await kept.waitFor(m => m.notification_id === afterUnsubscribe.id, 'after unsubscribe');
assert.ok(!dropped.messages.some(m => m.notification_id === afterUnsubscribe.id), 'an unsubscribed callback was called');
report('SignalSubscriber.unsubscribe');

// --- NotificationsClient ---------------------------------------------------------------------
const client = new NotificationsClient({ discoveryApi, fetchApi });
const before = new Date(Date.now() - 60_000);
const [low] = await send({ title: `${tag} low`, severity: 'low', topic: `${tag}-a` });
const [high] = await send({ title: `${tag} high`, severity: 'high', topic: `${tag}-b`, link: 'https://example.com/h' });
const [broadcast] = await send({ title: `${tag} broadcast`, severity: 'critical' }, { type: 'broadcast' });
const titles = response => response.notifications.map(n => n.payload.title);

let page = await client.getNotifications({ search: tag, limit: 50 });
assert.equal(page.totalCount, 3);
assert.deepEqual(titles(page), [`${tag} broadcast`, `${tag} high`, `${tag} low`]);
assert.equal(page.notifications[0].user, null);
page = await client.getNotifications({ search: tag, sort: 'created', sortOrder: 'asc', limit: 2, offset: 1 });
assert.deepEqual(titles(page), [`${tag} high`, `${tag} broadcast`]);
assert.equal(page.totalCount, 3);
page = await client.getNotifications({ search: tag, minimumSeverity: 'high', createdAfter: before });
assert.deepEqual(titles(page), [`${tag} broadcast`, `${tag} high`]);
page = await client.getNotifications({ search: tag, topic: `${tag}-a` });
assert.deepEqual(titles(page), [`${tag} low`]);
page = await client.getNotifications({ search: tag, createdAfter: new Date(Date.now() + 3_600_000) });
assert.equal(page.totalCount, 0);
report('NotificationsClient.getNotifications');

const one = await client.getNotification(high.id);
assert.equal(one.id, high.id);
assert.equal(one.user, GUEST);
assert.equal(one.origin, 'bench');
assert.deepEqual(
  { ...one.payload },
  { title: `${tag} high`, description: null, link: 'https://example.com/h', severity: 'high', topic: `${tag}-b`, scope: null, icon: null },
);
await assert.rejects(client.getNotification(randomUUID()), error => {
  // ResponseError.fromResponse parses Backstage's error body
  assert.equal(error.name, 'ResponseError');
  assert.equal(error.statusCode, 404);
  assert.equal(error.body.error.name, 'NotFoundError');
  return true;
});
report('NotificationsClient.getNotification');

const status = await client.getStatus();
assert.equal(typeof status.unread, 'number');
assert.equal(typeof status.read, 'number');
report('NotificationsClient.getStatus', status);

let updated = await client.updateNotifications({ ids: [low.id, broadcast.id], read: true });
assert.deepEqual(updated.map(n => n.id).sort(), [low.id, broadcast.id].sort());
assert.ok(updated.every(n => n.read !== null));
const readSignal = await kept.waitFor(m => m.action === 'notification_read', 'notification_read');
assert.deepEqual([...readSignal.notification_ids].sort(), [low.id, broadcast.id].sort());
page = await client.getNotifications({ search: tag, read: true });
assert.deepEqual(titles(page), [`${tag} broadcast`, `${tag} low`]);
const afterRead = await client.getStatus();
assert.equal(afterRead.read, status.read + 2);
assert.equal(afterRead.unread, status.unread - 2);
updated = await client.updateNotifications({ ids: [high.id], saved: true });
assert.ok(updated[0].saved);
page = await client.getNotifications({ search: tag, saved: true });
assert.deepEqual(titles(page), [`${tag} high`]);
updated = await client.updateNotifications({ ids: [low.id], read: false });
assert.equal(updated[0].read, null);
await kept.waitFor(m => m.action === 'notification_unread', 'notification_unread');
page = await client.getNotifications({ search: tag, read: false, saved: false });
assert.deepEqual(titles(page), [`${tag} low`]);
updated = await client.updateNotifications({ ids: [high.id], saved: false });
assert.equal(updated[0].saved, null);
report('NotificationsClient.updateNotifications');

const topics = await client.getTopics({ search: tag });
assert.deepEqual(topics, { topics: [`${tag}-a`, `${tag}-b`] });
assert.deepEqual(await client.getTopics({ search: tag, minimumSeverity: 'high' }), { topics: [`${tag}-b`] });
report('NotificationsClient.getTopics');

const settings = await client.getNotificationSettings();
const web = settings.channels.find(channel => channel.id === 'Web');
assert.ok(web, JSON.stringify(settings));
const bench = web.origins.find(origin => origin.id === 'bench');
assert.ok(bench, JSON.stringify(web));
assert.equal(bench.enabled, true);
report('NotificationsClient.getNotificationSettings');

const topicA = `${tag}-a`;
const changed = {
  channels: [{
    id: 'Web',
    origins: [{ id: 'bench', enabled: true, topics: [{ id: topicA, enabled: false }] }],
  }],
};
const answered = await client.updateNotificationSettings(changed);
const answeredBench = answered.channels.find(c => c.id === 'Web').origins.find(o => o.id === 'bench');
assert.equal(answeredBench.enabled, true);
assert.equal(answeredBench.topics.find(t => t.id === topicA).enabled, false);
assert.deepEqual(await client.getNotificationSettings(), answered);
// A disabled topic is not delivered on the Web channel.
const muted = await send({ title: `${tag} muted`, topic: topicA });
assert.deepEqual(muted, []);
const restored = await client.updateNotificationSettings({ channels: [{ id: 'Web', origins: [{ id: 'bench', enabled: true }] }] });
assert.equal(restored.channels.find(c => c.id === 'Web').origins.find(o => o.id === 'bench').enabled, true);
report('NotificationsClient.updateNotificationSettings');

keptSub.unsubscribe();

// Every public method of the classes was exercised (private ones are TypeScript-private).
const PRIVATE = new Set(['constructor', 'appendCommonQueryStrings', 'request']);
for (const name of Object.getOwnPropertyNames(NotificationsClient.prototype).filter(n => !PRIVATE.has(n))) {
  assert.ok(called.has(`NotificationsClient.${name}`), `NotificationsClient.${name} was not exercised`);
}
const SIGNAL_PRIVATE = new Set(['constructor', 'syncSubscriptions', 'connect', 'openConnection', 'handleMessage', 'reconnect']);
for (const name of Object.getOwnPropertyNames(SignalClient.prototype).filter(n => !SIGNAL_PRIVATE.has(n))) {
  assert.ok(called.has(`SignalClient.${name}`), `SignalClient.${name} was not exercised`);
}
report('done', { methods: [...called] });
process.exit(0);
