// The peers nanocell is measured against, installed and prepared by the suite itself:
// raw runc with a minimal bundle (the floor for an OCI container), bubblewrap --unshare-all,
// srt 0.0.78 in a bench-local npm prefix, and Docker from Debian's docker.io with an image
// imported from a local tar (nothing is pulled). Every command here is what a user would run.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const SRT_VERSION = '0.0.78';

/** Runs a command to completion with no output kept; rejects on a non-zero exit. */
export function runQuiet(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; detach?: boolean } = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    // A command that leaves a process behind (runc run --detach) would hold a stderr pipe open.
    const { detach, ...spawnOpts } = opts;
    const p = spawn(cmd, args, {
      stdio: ['ignore', 'ignore', detach ? 'ignore' : 'pipe'],
      ...spawnOpts,
    });
    let err = '';
    p.stderr?.on('data', (d: Buffer) => {
      if (err.length < 4000) err += d.toString();
    });
    p.once('error', reject);
    p.once(detach ? 'exit' : 'close', (code, sig) =>
      code === 0
        ? resolve()
        : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code ?? sig}: ${err.trim()}`)),
    );
  });
}

function sh(cmd: string, args: string[], opts: { cwd?: string; input?: Buffer } = {}): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    ...opts,
  }).trim();
}

function have(bin: string): boolean {
  try {
    sh('sh', ['-c', `command -v ${bin}`]);
    return true;
  } catch {
    return false;
  }
}

function aptInstall(pkgs: string[], log: (s: string) => void): void {
  log(`apt-get install ${pkgs.join(' ')}`);
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...pkgs], {
    stdio: 'ignore',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/** A command a figure can time, or the reason it cannot run on this host. */
export interface Peer {
  name: string;
  version: string;
  /** Set when the peer could not be installed or started. */
  unavailable?: string;
  run: () => Promise<void>;
}

const unavailable = (name: string, why: string): Peer => ({
  name,
  version: '-',
  unavailable: why,
  run: () => Promise.reject(new Error(`${name} is unavailable: ${why}`)),
});

export interface Peers {
  runc: Peer;
  bwrap: Peer;
  srt: Peer;
  docker: Peer;
  /** Exec of /bin/true in a live container, for the exec figure. */
  runcExec: Peer;
  dockerExec: Peer;
  close: () => Promise<void>;
}

/** Static /bin/true and /bin/idle for images and bundles that carry no libc. */
function buildStaticRootfs(dir: string): void {
  fs.mkdirSync(`${dir}/bin`, { recursive: true });
  fs.writeFileSync(`${dir}/true.c`, 'int main(void) { return 0; }\n');
  fs.writeFileSync(`${dir}/idle.c`, '#include <unistd.h>\nint main(void) { for (;;) pause(); }\n');
  sh('cc', ['-static', '-O2', '-o', `${dir}/bin/true`, `${dir}/true.c`]);
  sh('cc', ['-static', '-O2', '-o', `${dir}/bin/idle`, `${dir}/idle.c`]);
  fs.rmSync(`${dir}/true.c`);
  fs.rmSync(`${dir}/idle.c`);
}

/** runc's own default spec, with the host /usr read-only: the same /bin/true nanocell runs. */
function makeRuncBundle(dir: string, args: string[]): void {
  fs.mkdirSync(`${dir}/rootfs`, { recursive: true });
  for (const d of ['usr', 'proc', 'dev', 'sys', 'tmp', 'etc'])
    fs.mkdirSync(`${dir}/rootfs/${d}`, { recursive: true });
  for (const l of ['bin', 'lib', 'lib64', 'sbin']) {
    if (!fs.existsSync(`${dir}/rootfs/${l}`)) fs.symlinkSync(`usr/${l}`, `${dir}/rootfs/${l}`);
  }
  sh('runc', ['spec', '--bundle', dir]);
  const spec = JSON.parse(fs.readFileSync(`${dir}/config.json`, 'utf8')) as {
    process: { terminal: boolean; args: string[] };
    root: { readonly: boolean };
    mounts: object[];
  };
  spec.process.terminal = false;
  spec.process.args = args;
  spec.root.readonly = true;
  spec.mounts.push({
    destination: '/usr',
    type: 'bind',
    source: '/usr',
    options: ['rbind', 'ro', 'nosuid', 'nodev'],
  });
  fs.writeFileSync(`${dir}/config.json`, JSON.stringify(spec, null, 1));
}

export async function setupRunc(base: string): Promise<
  Pick<Peers, 'runc' | 'runcExec'> & {
    close: () => Promise<void>;
  }
> {
  const version = sh('runc', ['--version']).split('\n')[0]!.replace('runc version ', '');
  const root = `${base}/runc-root`;
  makeRuncBundle(`${base}/runc-true`, ['/bin/true']);
  makeRuncBundle(`${base}/runc-live`, ['/bin/sleep', 'infinity']);
  let n = 0;
  const runc: Peer = {
    name: 'raw runc',
    version,
    run: () =>
      runQuiet('runc', ['--root', root, 'run', '--bundle', `${base}/runc-true`, `t${n++}`]),
  };
  await runQuiet(
    'runc',
    ['--root', root, 'run', '--detach', '--bundle', `${base}/runc-live`, 'live'],
    { detach: true },
  );
  const runcExec: Peer = {
    name: 'runc exec',
    version,
    run: () => runQuiet('runc', ['--root', root, 'exec', 'live', '/bin/true']),
  };
  return {
    runc,
    runcExec,
    close: () => runQuiet('runc', ['--root', root, 'delete', '--force', 'live']).catch(() => {}),
  };
}

function setupBwrap(): Peer {
  if (!have('bwrap')) return unavailable('bubblewrap', 'bwrap is not installed');
  const version = sh('bwrap', ['--version']).replace('bubblewrap ', '');
  // --unshare-all with the same view of the host nanocell gives a cell: /usr read-only.
  const args = [
    '--unshare-all',
    '--die-with-parent',
    '--ro-bind',
    '/usr',
    '/usr',
    '--symlink',
    'usr/bin',
    '/bin',
    '--symlink',
    'usr/lib',
    '/lib',
    '--symlink',
    'usr/lib64',
    '/lib64',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '/bin/true',
  ];
  return { name: 'bubblewrap', version, run: () => runQuiet('bwrap', args) };
}

export function setupSrt(
  benchDir: string,
  base: string,
  project: string,
  log: (s: string) => void,
): Peer {
  const prefix = path.join(benchDir, '.peers');
  const bin = path.join(prefix, 'node_modules', '.bin', 'srt');
  try {
    const pkg = path.join(
      prefix,
      'node_modules',
      '@anthropic-ai',
      'sandbox-runtime',
      'package.json',
    );
    const installed = fs.existsSync(pkg)
      ? (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version
      : null;
    if (installed !== SRT_VERSION) {
      log(`npm install @anthropic-ai/sandbox-runtime@${SRT_VERSION} into ${prefix}`);
      fs.mkdirSync(prefix, { recursive: true });
      execFileSync(
        'npm',
        [
          'install',
          '--prefix',
          prefix,
          '--no-audit',
          '--no-fund',
          `@anthropic-ai/sandbox-runtime@${SRT_VERSION}`,
        ],
        { stdio: 'ignore' },
      );
    }
    // srt refuses to start without these on Linux.
    const missing = [
      ['rg', 'ripgrep'],
      ['socat', 'socat'],
    ].filter(([b]) => !have(b!));
    if (missing.length)
      aptInstall(
        missing.map(([, p]) => p!),
        log,
      );
  } catch (e) {
    return unavailable('srt', `install failed: ${(e as Error).message.split('\n')[0]}`);
  }
  // One allowed domain, as nanocell's full policy has one allowed host: srt starts its proxies.
  const settings = `${base}/srt-settings.json`;
  fs.writeFileSync(
    settings,
    JSON.stringify({
      filesystem: { denyRead: [], allowWrite: ['.'], denyWrite: [] },
      network: { allowedDomains: ['bench.test'], deniedDomains: [] },
    }),
  );
  return {
    name: 'srt CLI',
    version: sh(bin, ['--version']),
    run: () => runQuiet(bin, ['-s', settings, '/bin/true'], { cwd: project }),
  };
}

async function setupDocker(
  base: string,
  log: (s: string) => void,
): Promise<Pick<Peers, 'docker' | 'dockerExec'> & { close: () => Promise<void> }> {
  const down = (why: string) => ({
    docker: unavailable('docker run', why),
    dockerExec: unavailable('docker exec', why),
    close: async () => {},
  });
  try {
    if (!have('dockerd')) aptInstall(['docker.io'], log);
  } catch (e) {
    return down(`apt-get install docker.io failed: ${(e as Error).message.split('\n')[0]}`);
  }
  // An engine of our own: its own socket and state, no iptables or bridge (--network none).
  const sock = `${base}/docker.sock`;
  const host = ['-H', `unix://${sock}`];
  const dockerd = spawn(
    'dockerd',
    [
      ...host,
      '--data-root',
      '/var/lib/nanocell-bench-docker',
      '--exec-root',
      `${base}/docker-exec`,
      '--pidfile',
      `${base}/docker.pid`,
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let dlog = '';
  dockerd.stderr!.on('data', (d: Buffer) => {
    dlog = (dlog + d.toString()).slice(-4000);
  });
  const stop = async () => {
    if (dockerd.exitCode !== null) return;
    dockerd.kill('SIGTERM');
    await new Promise((r) => {
      const t = setTimeout(() => {
        dockerd.kill('SIGKILL');
        r(undefined);
      }, 15_000);
      dockerd.once('exit', () => {
        clearTimeout(t);
        r(undefined);
      });
    });
  };
  const client = have('docker') ? 'docker' : '/usr/bin/docker';
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      sh(client, [...host, 'info']);
      break;
    } catch {
      if (dockerd.exitCode !== null || Date.now() > deadline) {
        await stop();
        return down(`dockerd did not start: ${dlog.trim().split('\n').pop() ?? ''}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    const rootfs = `${base}/docker-rootfs`;
    buildStaticRootfs(rootfs);
    execFileSync('tar', ['-C', rootfs, '-cf', `${base}/rootfs.tar`, '.']);
    sh(client, [...host, 'import', `${base}/rootfs.tar`, 'nanocell-bench-true:latest']);
    const version = sh(client, [...host, 'version', '--format', '{{.Server.Version}}']);
    const run = ['run', '--rm', '--network', 'none', 'nanocell-bench-true', '/bin/true'];
    await runQuiet(client, [...host, 'rm', '-f', 'nanocell-bench-live']).catch(() => {});
    await runQuiet(client, [
      ...host,
      'run',
      '-d',
      '--network',
      'none',
      '--name',
      'nanocell-bench-live',
      'nanocell-bench-true',
      '/bin/idle',
    ]);
    return {
      docker: { name: 'docker run', version, run: () => runQuiet(client, [...host, ...run]) },
      dockerExec: {
        name: 'docker exec',
        version,
        run: () => runQuiet(client, [...host, 'exec', 'nanocell-bench-live', '/bin/true']),
      },
      close: async () => {
        await runQuiet(client, [...host, 'rm', '-f', 'nanocell-bench-live']).catch(() => {});
        await stop();
      },
    };
  } catch (e) {
    await stop();
    return down(`docker could not run a container: ${(e as Error).message.split('\n')[0]}`);
  }
}

export async function setupPeers(opts: {
  benchDir: string;
  base: string;
  project: string;
  log: (s: string) => void;
}): Promise<Peers> {
  const { benchDir, base, project, log } = opts;
  const runc = await setupRunc(base);
  const bwrap = setupBwrap();
  const srt = setupSrt(benchDir, base, project, log);
  const docker = await setupDocker(base, log);
  return {
    runc: runc.runc,
    runcExec: runc.runcExec,
    bwrap,
    srt,
    docker: docker.docker,
    dockerExec: docker.dockerExec,
    close: async () => {
      await runc.close();
      await docker.close();
    },
  };
}
