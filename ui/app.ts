// The dashboard page (bundled by esbuild into dist/ui/app.js): a hash router over the home page,
// a task's page and a session's page. The modules beside it build each page; dom.ts holds the
// one way text reaches the page (textContent, controls escaped).
import { h } from './dom.js';
import { home } from './home.js';
import { sessionView } from './session.js';
import { taskView } from './task.js';

const app = document.getElementById('app')!;
let timer: number | undefined;

async function route(): Promise<void> {
  window.clearInterval(timer);
  const task = /^#\/task\/([^/]+)$/.exec(location.hash);
  const session = /^#\/session\/([^/]+)$/.exec(location.hash);
  try {
    if (task) await taskView(app, decodeURIComponent(task[1]!));
    else if (session) await sessionView(app, decodeURIComponent(session[1]!));
    else {
      const refresh = await home(app);
      // Still on the home page (the hash may have moved on while it loaded).
      if (!/^#\/(task|session)\//.test(location.hash))
        timer = window.setInterval(() => void refresh().catch(() => undefined), 1000);
    }
  } catch (e) {
    app.replaceChildren(h('p', { class: 'broken' }, (e as Error).message));
  }
}

window.addEventListener('hashchange', () => void route());
void route();
