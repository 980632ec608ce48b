// A loopback stand-in of the Kubernetes API server: a CONTRACT SIMULATION, not a cluster.
// It implements only what nanocell's Kubernetes backend uses, as the API documents it:
//   - SandboxClaims (extensions.agents.x-k8s.io/v1beta1): create (validated against the
//     CRD's v1beta1 schema: 422 when invalid, 409 when the name exists, 404 when the CRD is
//     "not installed"), get, delete, and watch (?watch=true&fieldSelector=metadata.name=X
//     &resourceVersion=N) with ADDED/MODIFIED/DELETED/BOOKMARK events, an ERROR event with
//     code 410 for a resourceVersion older than the compaction floor, and scripted early
//     closes (the server ending a watch, which clients must resume);
//   - GET of a Service (its clusterIP);
//   - pods/exec over WebSocket, subprotocol v5.channel.k8s.io: binary frames whose first byte
//     is the channel (0 stdin, 1 stdout, 2 stderr, 3 status JSON, 255 close + channel).
// A scripted controller (`controller`) decides what happens to each created claim: Ready with
// a sandbox name and podIPs, Ready=False with a terminal reason, or nothing.
// What the pod runs on exec is the test's `onExec` (for example the real nanocell-init).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ValidateFunction } from 'ajv';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;

export interface ExecSession {
  command: string[];
  pod: string;
  container: string;
  stdout(data: Buffer): void;
  stderr(data: Buffer): void;
  /** Ends the exec with a V1Status (Success, or Failure with an exit code). */
  exit(code: number): void;
  onStdin(fn: (data: Buffer | null) => void): void;
  onClose(fn: () => void): void;
}

export interface FakeKubeApi {
  url: string;
  claims: Map<string, Obj>;
  /** Pods created and not deleted (the doctor's canary). */
  pods: Map<string, Obj>;
  /** Every request, "METHOD path", for assertions on the client's behaviour. */
  log: string[];
  /** Sets a claim's status and emits MODIFIED. */
  setStatus(name: string, status: Obj): void;
  /** Other writes happen, then history is compacted: a watch resumed from before gets 410 Gone. */
  compact(): void;
  /** Ends every open watch from the server side. */
  closeWatches(): void;
  openWatches(): number;
  crdInstalled: boolean;
  /** The next create answers with this status instead (409, 422, ...). */
  failNextCreate?: { code: number; reason: string };
  close(): Promise<void>;
}

export async function startFakeKubeApi(o: {
  claimSchema: ValidateFunction;
  controller: (claim: { metadata: { name: string } }, api: FakeKubeApi) => void;
  onExec: (s: ExecSession) => void;
  /** SandboxTemplates served by GET, by name (the rendered shapes). */
  templates?: Record<string, Obj>;
  /** A claim was deleted (the controller would delete its pod). */
  onDelete?: (claim: string) => void;
  services?: Record<string, string>;
  /** CustomResourceDefinitions served by GET /apis/apiextensions.k8s.io/v1/..., by name. */
  crds?: Record<string, unknown>;
  runtimeClasses?: Record<string, string>;
  /** SelfSubjectAccessReview answers: "verb resource[/sub]" → allowed (default true). */
  access?: Record<string, boolean>;
  /** What a created pod's container exits with (the NetworkPolicy canary); undefined: never. */
  /** (It may run the pod's command for real: it gets the pod.) */
  podExitCode?: (pod: Obj) => number | undefined | Promise<number | undefined>;
}): Promise<FakeKubeApi> {
  let rv = 100;
  let floor = 0;
  const history: { rv: number; type: string; obj: Obj }[] = [];
  const watchers = new Set<{ name?: string; res: http.ServerResponse }>();
  const claims = new Map<string, Obj>();
  const log: string[] = [];

  const emit = (type: string, obj: Obj) => {
    history.push({ rv: Number(obj.metadata.resourceVersion), type, obj: structuredClone(obj) });
    for (const w of watchers) {
      if (!w.name || w.name === obj.metadata.name)
        w.res.write(`${JSON.stringify({ type, object: obj })}\n`);
    }
  };
  const status = (res: http.ServerResponse, code: number, reason: string, message: string) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        message,
        reason,
        code,
      }),
    );
  };
  const json = (res: http.ServerResponse, code: number, body: unknown) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  const api: FakeKubeApi = {
    url: '',
    claims,
    pods: new Map(),
    log,
    crdInstalled: true,
    setStatus(name, st) {
      const c = claims.get(name);
      if (!c) return;
      c.status = st;
      c.metadata.resourceVersion = String(++rv);
      emit('MODIFIED', c);
    },
    compact() {
      // Other writes in the cluster moved the version on, then etcd compacted up to now.
      rv += 10;
      floor = rv;
    },
    closeWatches() {
      for (const w of [...watchers, ...podWatchers]) w.res.end();
      watchers.clear();
      podWatchers.clear();
    },
    openWatches: () => watchers.size,
    close: async () => {
      api.closeWatches();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  // Pods: create, watch by name, delete; a created pod terminates with podExitCode().
  const podStore = new Map<string, Obj>();
  const podWatchers = new Set<{ name?: string; res: http.ServerResponse }>();
  const pods = (req: http.IncomingMessage, res: http.ServerResponse, url: URL): boolean => {
    const pm = /^\/api\/v1\/namespaces\/[^/]+\/pods(?:\/([^/]+))?$/.exec(url.pathname);
    if (!pm) return false;
    if (req.method === 'POST') {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const pod = JSON.parse(body) as Obj;
        podStore.set(pod.metadata.name, pod);
        json(res, 201, pod);
        void Promise.resolve(o.podExitCode?.(pod)).then((code) => {
          if (code === undefined) return;
          pod.status = {
            phase: code === 0 ? 'Succeeded' : 'Failed',
            containerStatuses: [{ name: 'canary', state: { terminated: { exitCode: code } } }],
          };
          for (const w of podWatchers)
            if (w.name === pod.metadata.name)
              w.res.write(`${JSON.stringify({ type: 'MODIFIED', object: pod })}\n`);
        });
      });
    } else if (req.method === 'GET' && url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json' });
      const w = {
        name: /^metadata\.name=(.+)$/.exec(url.searchParams.get('fieldSelector') ?? '')?.[1],
        res,
      };
      podWatchers.add(w);
      req.on('close', () => podWatchers.delete(w));
      // A watch without a resourceVersion starts with the current state (synthetic ADDED).
      const current = w.name ? podStore.get(w.name) : undefined;
      if (current) res.write(`${JSON.stringify({ type: 'ADDED', object: current })}\n`);
    } else if (req.method === 'DELETE' && pm[1]) {
      podStore.delete(pm[1]);
      json(res, 200, { kind: 'Status', status: 'Success' });
    } else status(res, 405, 'MethodNotAllowed', 'not implemented by the stand-in');
    return true;
  };
  api.pods = podStore;

  const claimPath =
    /^\/apis\/extensions\.agents\.x-k8s\.io\/v1beta1\/namespaces\/([^/]+)\/sandboxclaims(?:\/([^/?]+))?$/;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    log.push(`${req.method} ${url.pathname}${url.searchParams.get('watch') ? '?watch' : ''}`);
    const m = claimPath.exec(url.pathname);
    const svc = /^\/api\/v1\/namespaces\/[^/]+\/services\/([^/]+)$/.exec(url.pathname);
    const crd = /^\/apis\/apiextensions\.k8s\.io\/v1\/customresourcedefinitions\/([^/]+)$/.exec(
      url.pathname,
    );
    if (crd)
      return o.crds?.[crd[1]!]
        ? json(res, 200, o.crds[crd[1]!])
        : status(res, 404, 'NotFound', 'crd not found');
    const rc = /^\/apis\/node\.k8s\.io\/v1\/runtimeclasses\/([^/]+)$/.exec(url.pathname);
    if (rc) {
      const h = o.runtimeClasses?.[rc[1]!];
      return h
        ? json(res, 200, { kind: 'RuntimeClass', metadata: { name: rc[1] }, handler: h })
        : status(res, 404, 'NotFound', 'runtimeclass not found');
    }
    if (
      req.method === 'POST' &&
      url.pathname === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews'
    ) {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const r = JSON.parse(body) as Obj;
        const a = r.spec.resourceAttributes;
        const key = `${a.verb} ${a.resource}${a.subresource ? `/${a.subresource}` : ''}`;
        json(res, 201, { ...r, status: { allowed: o.access?.[key] ?? true } });
      });
      return;
    }
    if (pods(req, res, url)) return;
    const tpl =
      /^\/apis\/extensions\.agents\.x-k8s\.io\/v1beta1\/namespaces\/[^/]+\/sandboxtemplates\/([^/]+)$/.exec(
        url.pathname,
      );
    if (tpl && req.method === 'GET') {
      const t = api.crdInstalled ? o.templates?.[tpl[1]!] : undefined;
      return t
        ? json(res, 200, t)
        : status(res, 404, 'NotFound', `sandboxtemplates "${tpl[1]}" not found`);
    }
    if (svc) {
      const ip = o.services?.[svc[1]!];
      return ip
        ? json(res, 200, { kind: 'Service', metadata: { name: svc[1] }, spec: { clusterIP: ip } })
        : status(res, 404, 'NotFound', 'service not found');
    }
    if (!m || !api.crdInstalled)
      return status(res, 404, 'NotFound', 'the server could not find the requested resource');
    const name = m[2];
    if (req.method === 'GET' && !name && url.searchParams.get('watch') === 'true') {
      const from = Number(url.searchParams.get('resourceVersion') ?? 0);
      const sel = /^metadata\.name=(.+)$/.exec(url.searchParams.get('fieldSelector') ?? '')?.[1];
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      if (from && from < floor) {
        res.end(
          `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' } })}\n`,
        );
        return;
      }
      for (const h of history) {
        if (h.rv > from && (!sel || h.obj.metadata.name === sel))
          res.write(`${JSON.stringify({ type: h.type, object: h.obj })}\n`);
      }
      const w = { name: sel, res };
      watchers.add(w);
      req.on('close', () => watchers.delete(w));
      return;
    }
    if (req.method === 'GET' && name) {
      const c = claims.get(name);
      return c
        ? json(res, 200, c)
        : status(res, 404, 'NotFound', `sandboxclaims "${name}" not found`);
    }
    if (req.method === 'DELETE' && name) {
      const c = claims.get(name);
      if (!c) return status(res, 404, 'NotFound', `sandboxclaims "${name}" not found`);
      claims.delete(name);
      c.metadata.resourceVersion = String(++rv);
      emit('DELETED', c);
      o.onDelete?.(name);
      return json(res, 200, { kind: 'Status', status: 'Success' });
    }
    if (req.method === 'POST' && !name && api.failNextCreate) {
      const f = api.failNextCreate;
      api.failNextCreate = undefined;
      req.resume();
      return status(res, f.code, f.reason, `scripted ${f.reason}`);
    }
    if (req.method === 'POST' && !name) {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const obj = JSON.parse(body) as Obj;
        if (!o.claimSchema(obj)) {
          return status(
            res,
            422,
            'Invalid',
            `SandboxClaim is invalid: ${JSON.stringify(o.claimSchema.errors?.[0])}`,
          );
        }
        if (claims.has(obj.metadata.name))
          return status(
            res,
            409,
            'AlreadyExists',
            `sandboxclaims "${obj.metadata.name}" already exists`,
          );
        obj.metadata = {
          ...obj.metadata,
          namespace: m[1],
          uid: `uid-${rv}`,
          resourceVersion: String(++rv),
          creationTimestamp: new Date().toISOString(),
        };
        claims.set(obj.metadata.name, obj);
        emit('ADDED', obj);
        json(res, 201, obj);
        setImmediate(() => o.controller(obj as { metadata: { name: string } }, api));
      });
      return;
    }
    status(res, 405, 'MethodNotAllowed', 'not implemented by the stand-in');
  });

  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) =>
      protocols.has('v5.channel.k8s.io') ? 'v5.channel.k8s.io' : false,
  });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const pm = /^\/api\/v1\/namespaces\/[^/]+\/pods\/([^/]+)\/exec$/.exec(url.pathname);
    log.push(`UPGRADE ${url.pathname}`);
    if (!pm) return socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      let stdinFn: (d: Buffer | null) => void = () => undefined;
      const closeFns: (() => void)[] = [];
      ws.on('message', (data: Buffer) => {
        if (data[0] === 0) stdinFn(data.subarray(1));
        else if (data[0] === 255 && data[1] === 0) stdinFn(null);
      });
      ws.on('close', () => closeFns.forEach((f) => f()));
      const send = (ch: number, d: Buffer) =>
        ws.readyState === ws.OPEN && ws.send(Buffer.concat([Buffer.from([ch]), d]));
      o.onExec({
        command: url.searchParams.getAll('command'),
        pod: pm[1]!,
        container: url.searchParams.get('container') ?? '',
        stdout: (d) => send(1, d),
        stderr: (d) => send(2, d),
        exit(code) {
          const st =
            code === 0
              ? { status: 'Success' }
              : {
                  status: 'Failure',
                  reason: 'NonZeroExitCode',
                  details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
                };
          send(3, Buffer.from(JSON.stringify(st)));
          ws.close();
        },
        onStdin: (fn) => (stdinFn = fn),
        onClose: (fn) => closeFns.push(fn),
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return api;
}
