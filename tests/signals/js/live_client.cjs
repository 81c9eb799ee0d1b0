// Runs the served client.js against a real host: prints one JSON line per state change, message and resync.
// Usage: node --experimental-websocket live_client.cjs <signals base URL> <token> <channel>
'use strict';
const path = require('node:path');
const { SignalClient } = require(path.join(__dirname, '../../../plugin_signals/static/client.js'));

const [baseUrl, token, channel] = process.argv.slice(2);
const out = value => process.stdout.write(JSON.stringify(value) + '\n');
const client = new SignalClient({
  baseUrl,
  getToken: async () => token,
  minReconnectDelay: 100,
  maxReconnectDelay: 1000,
  onStateChange: (state, transport) => out({ state, transport }),
});
client.subscribe(channel, message => out({ message, position: client.position(channel) }), {
  onResync: () => out({ resync: channel }),
});
process.on('SIGTERM', () => {
  client.close();
  process.exit(0);
});
