// Secret stores around the project: the default excludes cover the credential and state files of
// infrastructure, serverless, registry, forge and agent tools; when the workspace is (or holds) a
// home directory or the nanocell state root, that home's credential stores and histories, and the
// state root, are hidden too, and the task's audit trail says why.
//
// Every secret here is planted on the host before the cell starts; each test reads it from a real
// cell by name, by listing, and through a symlink the cell makes, and asserts it never shows.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AttackCell, ENOENT, type Attempt } from './harness.js';

const SECRET = 'STORE-SECRET-SENTINEL';

let ac: AttackCell | undefined;
const savedHome = process.env.HOME;
afterEach(async () => {
  process.env.HOME = savedHome;
  await ac?.dispose();
  ac = undefined;
});

const absent = (rs: Attempt[]) => {
  for (const r of rs) {
    expect(r.ok, `${r.a} ${r.t} → ${r.out}`).toBe(false);
    expect(r.errno, r.t).toBe(ENOENT);
    expect(r.out).not.toContain(SECRET);
  }
};

/** Plants each path with the sentinel; returns the paths. */
const plant = (files: string[]) => Object.fromEntries(files.map((f) => [f, `${SECRET} ${f}\n`]));

/** Reads each path, lists each dir, and follows a symlink the cell itself makes to each path. */
async function readAll(cell: AttackCell, paths: string[]) {
  absent(await cell.atk('read', ...paths));
  const links = paths.map((p, i) => `ln -sf "$PWD/${p}" link${i}`).join('; ');
  await cell.sh(links);
  absent(await cell.atk('read', ...paths.map((_, i) => `link${i}`)));
  const grep = await cell.sh(`grep -r ${SECRET} . 2>/dev/null; true`);
  expect(grep.stdout).not.toContain(SECRET);
}

describe('secret stores', () => {
  it('SS-01 reads infrastructure state and variable files in the project', async () => {
    const files = [
      'infra/terraform.tfstate',
      'infra/terraform.tfstate.backup',
      'infra/prod.tfvars',
      'infra/prod.auto.tfvars.json',
      '.terraformrc',
      '.pulumi/stacks/dev.json',
      '.vagrant/machines/default/virtualbox/private_key',
      'ansible/.vault_pass.txt',
      'deploy/kubeconfig',
      'deploy/staging.kubeconfig',
      '.s3cfg',
      'vpn/office.ovpn',
    ];
    ac = await AttackCell.start({ files: { ...plant(files), 'main.tf': 'resource {}\n' } });
    await readAll(ac, files);
    // What is not a secret stays: the cell can still plan the infrastructure code.
    expect((await ac.sh('cat main.tf')).stdout).toBe('resource {}\n');
    await ac.execRecorded('read', 'infra/terraform.tfstate');
  });

  it('SS-02 reads local secret files of serverless and app platforms', async () => {
    const files = [
      'worker/.dev.vars',
      'worker/.dev.vars.staging',
      'api/local.settings.json',
      'functions/.runtimeconfig.json',
      'serviceAccountKey.json',
      'config/my-project-service-account.json',
      'config/app-firebase-adminsdk-x1y2.json',
      'client_secret_123.apps.json',
      '.streamlit/secrets.toml',
      'android/keystore.properties',
      'ios/AuthKey_ABC123.p8',
    ];
    ac = await AttackCell.start({ files: plant(files) });
    await readAll(ac, files);
  });

  it('SS-03 reads registry and forge credentials kept in the project', async () => {
    const files = [
      '.yarnrc',
      'pip.conf',
      '.gem/credentials',
      '.bundle/config',
      '.cargo/credentials.toml',
      '.cargo/credentials',
      '.m2/settings.xml',
      '.gradle/gradle.properties',
      'auth.json',
      '.config/gh/hosts.yml',
      '.config/glab-cli/config.yml',
      '.config/git/credentials',
      '.claude/.credentials.json',
      '.gemini/oauth_creds.json',
    ];
    ac = await AttackCell.start({
      files: {
        ...plant(files),
        '.cargo/config.toml': '[build]\n',
        '.claude/settings.json': '{}\n',
      },
    });
    await readAll(ac, files);
    // The tools' ordinary settings next to them stay visible.
    expect((await ac.sh('cat .cargo/config.toml .claude/settings.json')).stdout).toBe(
      '[build]\n{}\n',
    );
  });

  it('SS-04 reads credential stores and histories when the workspace contains a home directory', async () => {
    const home = 'home/alice';
    const inHome = [
      '.claude/settings.json',
      '.claude/.credentials.json',
      '.claude.json',
      '.codex/auth.json',
      '.codex/config.toml',
      '.config/gh/hosts.yml',
      '.docker/config.json',
      '.kube/config',
      '.aws/credentials',
      '.bash_history',
      '.zsh_history',
      '.python_history',
      '.node_repl_history',
      '.psql_history',
      '.local/share/fish/fish_history',
      '.mozilla/firefox/x.default/cookies.sqlite',
      '.config/chromium/Default/Cookies',
      '.password-store/bank.gpg',
    ].map((p) => `${home}/${p}`);
    ac = await AttackCell.start({
      files: { ...plant(inHome), [`${home}/notes.md`]: 'plain\n' },
      prepare: (project) => {
        process.env.HOME = path.join(project, home);
      },
    });
    await readAll(ac, inHome);
    expect((await ac.sh(`cat ${home}/notes.md`)).stdout).toBe('plain\n');
    const notice = await ac.recorded(
      (e) => e.type === 'policy.degraded' && e.control === 'workspace-home',
    );
    expect(JSON.stringify(notice)).toContain(path.join(ac.project, home));
  });

  it('SS-05 reads them when the workspace is the home directory itself', async () => {
    const files = ['.claude/.credentials.json', '.codex/auth.json', '.bash_history', '.netrc'];
    ac = await AttackCell.start({
      files: { ...plant(files), 'src/app.js': '1\n' },
      prepare: (project) => {
        process.env.HOME = project;
      },
    });
    await readAll(ac, files);
    const ls = await ac.atk('list', '.');
    expect(ls[0]!.out.split(' ')).not.toContain('.claude');
    expect(ls[0]!.out.split(' ')).toContain('src');
    await ac.recorded((e) => e.type === 'policy.degraded' && e.control === 'workspace-home');
  });

  it("SS-06 reads nanocell's own state (audit database, change sets) when the state root is inside the workspace", async () => {
    ac = await AttackCell.start({
      files: { 'src/app.js': '1\n' },
      stateRoot: (project) => path.join(project, '.local/state/nanocell'),
    });
    const state = '.local/state/nanocell';
    expect(fs.existsSync(path.join(ac.project, state, 'nanocell.db'))).toBe(true);
    absent(await ac.atk('read', `${state}/nanocell.db`, `${state}/cells`));
    absent(await ac.atk('list', state));
    const notice = await ac.recorded(
      (e) => e.type === 'policy.degraded' && e.control === 'workspace-home',
    );
    expect(JSON.stringify(notice)).toContain('state root');
  });
});
