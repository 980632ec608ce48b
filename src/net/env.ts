// The environment that points a cell's tools at its proxy. Inside the cell, init bridges
// 127.0.0.1:<port> to the proxy's unix socket; the proxy sniffs the first byte, so the one
// port serves HTTP (forward + CONNECT) and SOCKS5 alike.

/** Loopback inside the cell is the cell's own: going direct there never leaves the cell. */
const CELL_NO_PROXY = 'localhost,127.0.0.1,::1';

export function proxyEnv(httpPort: number): Record<string, string> {
  if (!Number.isInteger(httpPort) || httpPort < 1 || httpPort > 65535) {
    throw new RangeError(`proxy port ${httpPort} is not a TCP port`);
  }
  // socks5h: the client sends names, not addresses; the cell has no resolver of its own.
  return proxyEnvForUrls(`http://127.0.0.1:${httpPort}`, `socks5h://127.0.0.1:${httpPort}`);
}

/** The same variables for any proxy URL (a Kubernetes cell's proxy tier, with its token). */
export function proxyEnvForUrls(httpUrl: string, socksUrl: string): Record<string, string> {
  return {
    // curl, wget (lowercase only), git (libcurl), python urllib/requests/pip, Go, Deno, Bun.
    HTTP_PROXY: httpUrl,
    HTTPS_PROXY: httpUrl,
    ALL_PROXY: socksUrl,
    NO_PROXY: CELL_NO_PROXY,
    http_proxy: httpUrl,
    https_proxy: httpUrl,
    all_proxy: socksUrl,
    no_proxy: CELL_NO_PROXY,
    // npm and pnpm read npm_config_*; yarn berry reads YARN_*.
    npm_config_proxy: httpUrl,
    npm_config_https_proxy: httpUrl,
    npm_config_noproxy: CELL_NO_PROXY,
    YARN_HTTP_PROXY: httpUrl,
    YARN_HTTPS_PROXY: httpUrl,
    PIP_PROXY: httpUrl,
    CARGO_HTTP_PROXY: httpUrl,
    // git also reads http_proxy, but http.proxy in config wins over a user's ~/.gitconfig.
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'http.proxy',
    GIT_CONFIG_VALUE_0: httpUrl,
    // Node 24+ (and late 22.x) route fetch and http(s) through HTTP(S)_PROXY with this; Node
    // 20 ignores it (see docs/network.md for what to do there).
    NODE_USE_ENV_PROXY: '1',
  };
}
