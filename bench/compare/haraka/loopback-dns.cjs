// Preloaded into Haraka by bench/compare (node -r): its DNS lookups (the reverse lookup of every
// client) go to 127.0.0.1:9, where nothing answers, instead of the machine's resolver, so the
// benchmark never sends anything beyond loopback (Postern's bench config does the same).
'use strict';
const dns = require('node:dns');
dns.setServers(['127.0.0.1:9']);
dns.promises.setServers(['127.0.0.1:9']);
