// A wildcard over a public suffix (`*.co.uk`, `*.github.io`) lets a cell reach any domain that
// anyone can register there, which is as good as no allowlist. A single label (`*.com`) is
// always refused; these are the common multi-label suffixes where the same holds. The full
// Public Suffix List is thousands of entries that change weekly: not worth a dependency for a
// check whose job is to catch a mistake, not to be exhaustive.
const COUNTRY_SECOND_LEVEL = {
  uk: ['co', 'org', 'me', 'ltd', 'plc', 'net', 'ac', 'gov', 'sch', 'nhs', 'police'],
  au: ['com', 'net', 'org', 'edu', 'gov', 'asn', 'id'],
  nz: ['co', 'net', 'org', 'ac', 'govt', 'geek', 'kiwi'],
  jp: ['co', 'ne', 'or', 'ac', 'go', 'ad', 'ed', 'gr', 'lg'],
  kr: ['co', 'ne', 'or', 'ac', 'go', 're'],
  br: ['com', 'net', 'org', 'gov', 'edu', 'art'],
  cn: ['com', 'net', 'org', 'gov', 'edu', 'ac'],
  tw: ['com', 'net', 'org', 'edu', 'gov', 'idv'],
  hk: ['com', 'net', 'org', 'edu', 'gov', 'idv'],
  in: ['co', 'net', 'org', 'firm', 'gen', 'ind', 'ac', 'edu', 'gov', 'res'],
  za: ['co', 'net', 'org', 'ac', 'gov', 'web'],
  il: ['co', 'net', 'org', 'ac', 'gov', 'muni'],
  id: ['co', 'net', 'or', 'ac', 'go', 'web', 'my'],
  th: ['co', 'net', 'or', 'ac', 'go', 'in'],
  sg: ['com', 'net', 'org', 'edu', 'gov', 'per'],
  my: ['com', 'net', 'org', 'edu', 'gov', 'name'],
  ph: ['com', 'net', 'org', 'edu', 'gov'],
  vn: ['com', 'net', 'org', 'edu', 'gov'],
  mx: ['com', 'net', 'org', 'edu', 'gob'],
  ar: ['com', 'net', 'org', 'edu', 'gob'],
  tr: ['com', 'net', 'org', 'edu', 'gov', 'biz', 'info'],
  ua: ['com', 'net', 'org', 'edu', 'gov', 'in'],
  ru: ['com', 'net', 'org', 'msk', 'spb'],
  pl: ['com', 'net', 'org', 'info', 'biz', 'waw'],
  es: ['com', 'org', 'nom', 'edu', 'gob'],
  pk: ['com', 'net', 'org', 'edu', 'gov'],
  ng: ['com', 'net', 'org', 'edu', 'gov'],
  eg: ['com', 'net', 'org', 'edu', 'gov'],
  sa: ['com', 'net', 'org', 'edu', 'gov'],
  ae: ['co', 'net', 'org', 'ac', 'gov'],
  ke: ['co', 'ne', 'or', 'ac', 'go'],
  co: ['com', 'net', 'org', 'edu', 'gov'],
  pe: ['com', 'net', 'org', 'edu', 'gob'],
  cl: ['co', 'gob'],
  eu: ['com'],
  us: ['com'],
} as const;

/**
 * Platforms where anyone can get a subdomain (and so receive data) for free. Only those: a
 * Public Suffix List entry whose hosts are all run by its operator (githubusercontent.com:
 * raw., objects., avatars. are GitHub's own services, listed there for cookie isolation) is an
 * ordinary registrable domain here, so `*.githubusercontent.com` is allowed as documented.
 */
const SHARED_PLATFORMS = [
  'github.io',
  'gitlab.io',
  'bitbucket.io',
  'herokuapp.com',
  'herokudns.com',
  'vercel.app',
  'now.sh',
  'netlify.app',
  'netlify.com',
  'pages.dev',
  'workers.dev',
  'r2.dev',
  'trycloudflare.com',
  'appspot.com',
  'web.app',
  'firebaseapp.com',
  'cloudfunctions.net',
  'run.app',
  'blogspot.com',
  'cloudfront.net',
  'amazonaws.com',
  'elasticbeanstalk.com',
  'azurewebsites.net',
  'azureedge.net',
  'cloudapp.net',
  'blob.core.windows.net',
  'ngrok.io',
  'ngrok-free.app',
  'ngrok.app',
  'loca.lt',
  'serveo.net',
  'fly.dev',
  'onrender.com',
  'repl.co',
  'replit.dev',
  'glitch.me',
  'duckdns.org',
  'no-ip.org',
  'ddns.net',
  'dyndns.org',
  'webhook.site',
  'pipedream.net',
  'requestbin.net',
  'burpcollaborator.net',
  'oast.fun',
  'interact.sh',
  'nip.io',
  'sslip.io',
  'localtest.me',
];

const SUFFIXES: ReadonlySet<string> = new Set([
  ...Object.entries(COUNTRY_SECOND_LEVEL).flatMap(([tld, seconds]) =>
    seconds.map((s) => `${s}.${tld}`),
  ),
  ...SHARED_PLATFORMS,
]);

/** True if `name` (lowercase ASCII, no trailing dot) is a single label or a known public suffix. */
export function isPublicSuffix(name: string): boolean {
  return !name.includes('.') || SUFFIXES.has(name);
}
