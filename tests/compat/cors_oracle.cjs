// Backstage's own CORS middleware (backend-defaults MiddlewareFactory.cors(), from the peer's
// node_modules) on an otherwise empty express app, configured with the backend.cors given as JSON.
// The shared peer runs without backend.cors, so `python -m tests.compat.record --cors-oracle`
// records the CORS cases from this instead. Prints the port it listens on.
// Usage: node cors_oracle.cjs '<backend.cors as JSON>'   (BACKSTAGE_PEER_HOME: the peer's folder)
'use strict';
const path = require('node:path');
const { createRequire } = require('node:module');
const home = process.env.BACKSTAGE_PEER_HOME || '/var/tmp/backstage-peer';
const peerRequire = createRequire(path.join(home, 'package.json'));
const { MiddlewareFactory } = peerRequire('@backstage/backend-defaults/rootHttpRouter');
const { ConfigReader } = peerRequire('@backstage/config');
const express = peerRequire('express');
const config = new ConfigReader({ backend: { cors: JSON.parse(process.argv[2]) } });
const quiet = { child: () => quiet, info() {}, warn() {}, error() {}, debug() {} };
const middleware = MiddlewareFactory.create({ config, logger: quiet });
const app = express();
app.use(middleware.cors());
app.use((_req, res) => res.status(418).end());
const server = app.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
