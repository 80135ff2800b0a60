// map-check.mjs — drives the live map in Debian's chromium (playwright-core) for
// tests/integration/t81-map.sh and prints one "PASS: what" / "FAIL: what (expected X, got Y)"
// line per check. Exits 0 when every check passed.
//
// Environment (set by the sh test):
//   MAP_URL          the page (parkd's http.listen, or the stand-in server)
//   MAP_EXPECT       JSON {lot: {free, capacity, status, stale, placed}} — what Redis holds
//   MAP_PUB_CMD      a shell command that publishes one sensor message
//   MAP_PUB_LOT      the lot it changes, MAP_PUB_FREE the free count it leads to
//   MAP_FULL_LOT, MAP_STALE_LOT, MAP_OPEN_LOT   lots whose markers must look different
//   MAP_FULLIN_LOT, MAP_FULLIN_MIN   a lot whose list item must say "full in N min"
//   MAP_ZONE_LOT, MAP_ZONE_TEXT, MAP_CAT_TEXT   a lot whose popup must list that zone line
//                    ("Level 1: 9/10 · open") and that category line ("disabled: 1/2")
//   MAP_SCREENSHOT   where to save a PNG of the page
//   CHROMIUM         the browser (default /usr/bin/chromium); MAP_PROFILE a fresh profile dir
import { chromium } from 'playwright-core';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = process.env;
const expect = JSON.parse(env.MAP_EXPECT || '{}');
let fails = 0;
const pass = (d) => console.log(`PASS: ${d}`);
const fail = (d, e, g) => {
  fails += 1;
  console.log(`FAIL: ${d} (expected ${e}, got ${String(g).replace(/\s+/g, ' ').slice(0, 400)})`);
};
const check = (d, e, g) => (String(e) === String(g) ? pass(d) : fail(d, e, g));

const profile = env.MAP_PROFILE || mkdtempSync(join(tmpdir(), 'parkd-map-chromium.'));
// a fresh profile (playwright passes it as --user-data-dir)
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1100, height: 700 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const errors = [];
try {
  const page = browser.pages()[0] || await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));

  await page.goto(env.MAP_URL, { waitUntil: 'load' });
  check('the page connects to the broker over WebSocket',
    'connected', await page.waitForSelector('#conn[data-state="connected"]', { timeout: 10000 })
      .then(() => 'connected', async () => page.getAttribute('#conn', 'data-state')));

  // what the user sees, per lot: the list item and, for lots with coordinates, the marker label
  const shown = () => page.evaluate(() => {
    const r = {};
    for (const li of document.querySelectorAll('#lots li[data-lot]')) {
      const id = li.dataset.lot;
      const path = document.querySelector(`path.lot-marker[data-lot="${CSS.escape(id)}"]`);
      const lab = document.querySelector(`.lot-text[data-lot="${CSS.escape(id)}"]`);
      r[id] = {
        free: li.dataset.free, capacity: li.dataset.capacity, status: li.dataset.status,
        stale: li.dataset.stale, placed: li.dataset.placed,
        listText: li.querySelector('.free')?.textContent ?? null,
        label: lab ? lab.textContent : null,
        marker: path ? {
          fill: path.getAttribute('fill'), stroke: path.getAttribute('stroke'),
          dash: path.getAttribute('stroke-dasharray'), cls: path.getAttribute('class'),
          free: path.dataset.free, status: path.dataset.status, stale: path.dataset.stale,
        } : null,
      };
    }
    return r;
  });
  const agrees = (got, want) => got && got.free === String(want.free ?? '')
    && got.capacity === String(want.capacity) && got.status === want.status
    && got.stale === String(want.stale)
    && got.listText === `${want.free ?? '–'}/${want.capacity}`
    && (want.placed ? got.label === got.listText && got.marker && got.marker.free === got.free
      : got.marker === null);

  // wait (≤ 10 s) until every lot with data shows what Redis holds
  let s = {};
  const until = Date.now() + 10000;
  for (;;) {
    s = await shown();
    if (Object.entries(expect).every(([id, w]) => agrees(s[id], w)) || Date.now() > until) break;
    await page.waitForTimeout(100);
  }
  for (const [id, w] of Object.entries(expect)) {
    const g = s[id];
    check(`${id}: shown free/capacity equals Redis (${w.free ?? '–'}/${w.capacity})`,
      `${w.free ?? '–'}/${w.capacity}`, g ? g.listText : 'not shown');
    check(`${id}: shown status/stale equals Redis`, `${w.status}/${w.stale}`,
      g ? `${g.status}/${g.stale}` : 'not shown');
    if (w.placed) {
      check(`${id}: a marker labelled ${g?.listText}`, g?.listText, g?.label ?? 'no marker');
    } else {
      check(`${id} (no coordinates): in the side list, no marker`, 'false/none',
        g ? `${g.placed}/${g.marker ? 'marker' : 'none'}` : 'not shown');
    }
  }

  // markers of full, stale and open lots are told apart by their colour, dash or class
  const look = (id) => (s[id]?.marker ? `${s[id].marker.fill} ${s[id].marker.stroke} ${s[id].marker.dash} ${s[id].marker.cls}` : null);
  if (env.MAP_FULL_LOT && env.MAP_STALE_LOT && env.MAP_OPEN_LOT) {
    const f = look(env.MAP_FULL_LOT); const st = look(env.MAP_STALE_LOT); const o = look(env.MAP_OPEN_LOT);
    const distinct = f && st && o && f !== st && f !== o && st !== o
      && s[env.MAP_FULL_LOT].marker.fill !== s[env.MAP_OPEN_LOT].marker.fill;
    check('full, stale and open lots render differently (marker colour/dash/class)', 'distinct',
      distinct ? 'distinct' : `full=${f} stale=${st} open=${o}`);
    check('the stale lot is drawn dashed and the full one not',
      'dashed/solid', `${s[env.MAP_STALE_LOT]?.marker?.dash ? 'dashed' : 'solid'}/${s[env.MAP_FULL_LOT]?.marker?.dash ? 'dashed' : 'solid'}`);
  }

  // the popup: name, free/capacity, trend, forecast with its interval
  if (env.MAP_OPEN_LOT && s[env.MAP_OPEN_LOT]?.marker) {
    await page.click(`path.lot-marker[data-lot="${env.MAP_OPEN_LOT}"]`, { force: true });
    const pop = await page.waitForSelector(`.popup[data-lot="${env.MAP_OPEN_LOT}"]`, { timeout: 3000 })
      .then(() => page.evaluate((id) => {
        const p = document.querySelector(`.popup[data-lot="${id}"]`);
        return { free: p.querySelector('.pfree')?.textContent, trend: p.querySelector('.ptrend')?.textContent,
          rows: p.querySelectorAll('.pforecast tr[data-minutes]').length, text: p.textContent };
      }, env.MAP_OPEN_LOT), () => null);
    check(`${env.MAP_OPEN_LOT}: popup shows free/capacity`, s[env.MAP_OPEN_LOT].listText, pop?.free ?? 'no popup');
    check(`${env.MAP_OPEN_LOT}: popup shows a forecast row per horizon with low–high`,
      'rows>0 and a range', pop && pop.rows > 0 && /\d+–\d+/.test(pop.text) ? 'rows>0 and a range' : JSON.stringify(pop));
    await page.keyboard.press('Escape');
    await page.evaluate(() => window.parkdMap && document.querySelector('.leaflet-popup-close-button')?.click());
  }

  // zones and categories (SPEC §10) in the popup, as the availability carries them
  if (env.MAP_ZONE_LOT && s[env.MAP_ZONE_LOT]?.marker) {
    const id = env.MAP_ZONE_LOT;
    await page.click(`path.lot-marker[data-lot="${id}"]`, { force: true });
    const pop = await page.waitForSelector(`.popup[data-lot="${id}"] .pzones li`, { timeout: 3000 })
      .then(() => page.evaluate((lot) => {
        const p = document.querySelector(`.popup[data-lot="${lot}"]`);
        const lines = (sel) => [...p.querySelectorAll(sel)].map((li) => li.textContent);
        return { zones: lines('.pzones li'), cats: lines('.pcats li') };
      }, id), () => null);
    check(`${id}: popup lists the zone "${env.MAP_ZONE_TEXT}"`, env.MAP_ZONE_TEXT,
      pop?.zones.join(' | ') ?? 'no zones in the popup');
    check(`${id}: popup lists the category "${env.MAP_CAT_TEXT}"`, env.MAP_CAT_TEXT,
      pop?.cats.join(' | ') ?? 'no categories in the popup');
    await page.evaluate(() => document.querySelector('.leaflet-popup-close-button')?.click());
  }

  // "full in N min" from full_at vs the availability's ts
  if (env.MAP_FULLIN_LOT) {
    const want = `full in ${env.MAP_FULLIN_MIN} min`;
    const got = await page.waitForFunction(([id, w]) => {
      const li = document.querySelector(`#lots li[data-lot="${CSS.escape(id)}"]`);
      return li && li.textContent.includes(w) ? w : false;
    }, [env.MAP_FULLIN_LOT, want], { timeout: 5000 }).then((h) => h.jsonValue(), async () => page.evaluate(
      (id) => document.querySelector(`#lots li[data-lot="${CSS.escape(id)}"]`)?.textContent ?? 'not shown',
      env.MAP_FULLIN_LOT));
    check(`${env.MAP_FULLIN_LOT}: shows "${want}" (forecast full_at minus availability ts)`, want, got);
  }

  // a live change: publish a sensor message, the shown free count follows within 1 s
  if (env.MAP_PUB_CMD && env.MAP_PUB_LOT) {
    const lot = env.MAP_PUB_LOT;
    const want = String(env.MAP_PUB_FREE);
    const before = (await shown())[lot]?.free;
    const t0 = Date.now();
    const r = spawnSync('sh', ['-c', env.MAP_PUB_CMD], { stdio: 'inherit' });
    if (r.status !== 0) fail('the sensor message is published', 'exit 0', `exit ${r.status}`);
    const ok = await page.waitForFunction(([id, f]) => {
      const li = document.querySelector(`#lots li[data-lot="${CSS.escape(id)}"]`);
      const lab = document.querySelector(`.lot-text[data-lot="${CSS.escape(id)}"]`);
      return li && li.dataset.free === f && (!lab || lab.textContent.startsWith(`${f}/`));
    }, [lot, want], { timeout: 3000, polling: 20 }).then(() => true, () => false);
    const ms = Date.now() - t0;
    const after = (await shown())[lot]?.free;
    check(`${lot}: a published sensor message changes the shown free count (${before} -> ${want}) without a reload`,
      want, after);
    if (ok) {
      if (ms <= 1000) pass(`${lot}: the change shows within 1 s (${ms} ms)`);
      else fail(`${lot}: the change shows within 1 s`, '<= 1000 ms', `${ms} ms`);
    } else fail(`${lot}: the change shows within 1 s`, '<= 1000 ms', 'not within 3 s');
  }

  if (env.MAP_SCREENSHOT) {
    // the picture shows one popup open, as a user would look at a lot
    if (env.MAP_OPEN_LOT && s[env.MAP_OPEN_LOT]?.marker) {
      await page.click(`path.lot-marker[data-lot="${env.MAP_OPEN_LOT}"]`, { force: true });
      await page.waitForSelector(`.popup[data-lot="${env.MAP_OPEN_LOT}"]`, { timeout: 3000 }).catch(() => {});
    }
    await page.waitForTimeout(500);          // the popup's fade-in
    await page.screenshot({ path: env.MAP_SCREENSHOT });
  }
  check('no console errors, page errors or failed requests', 'none', errors.length ? errors.join(' | ') : 'none');
} catch (e) {
  fail('the map check runs', 'no exception', e && e.stack ? e.stack : e);
} finally {
  await browser.close();
  if (!env.MAP_PROFILE) rmSync(profile, { recursive: true, force: true });
}
process.exit(fails ? 1 : 0);
