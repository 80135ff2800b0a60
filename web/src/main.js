// parkd live map: reads /config.json, subscribes to parkd's retained MQTT outputs over WebSocket
// and draws each lot as a circle marker (lots without coordinates only in the side list).
// Every lot's rendered state is also in the DOM as data-* attributes on its list item and marker,
// so a browser test reads what the user sees.
import 'leaflet/dist/leaflet.css';
import './style.css';
import L from 'leaflet';
import mqtt from 'mqtt';

const COLOURS = {
  open: '#1a9641',
  almost_full: '#f29e0c',
  full: '#d7191c',
  closed: '#5b2c6f',
  unknown: '#8c8c8c',
};
const STALE_FILL = '#d9d9d9';

const lots = new Map();     // id -> lot state (see lotState)
let map = null;
let markersLayer = null;
let userMoved = false;      // once the user pans or zooms, new markers no longer refit the view
let fitting = false;
let lastBoundsKey = '';

const $ = (id) => document.getElementById(id);

function setConn(state, text) {
  const el = $('conn');
  el.dataset.state = state;
  el.textContent = text || state;
}

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function lotState(id) {
  let s = lots.get(id);
  if (!s) {
    s = {
      id, name: id, lat: null, lon: null, capacity: null, free: null, status: 'unknown',
      stale: false, ts: null, trend: null, forecast: null, haveAvail: false,
      zones: [], categories: [], unknown: null,
      marker: null, item: null,
    };
    lots.set(id, s);
  }
  return s;
}

function placed(s) { return s.lat !== null && s.lon !== null; }

// "516/577", or "–/577" before the lot has data
function label(s) {
  const f = s.free === null ? '–' : String(Math.round(s.free));
  return `${f}/${s.capacity === null ? '–' : s.capacity}`;
}

function parseTs(t) {
  if (t === null || t === undefined) return null;
  const ms = typeof t === 'number' ? t * 1000 : Date.parse(t);
  return Number.isFinite(ms) ? ms : null;
}

// Minutes from the lot's availability time to the forecast's full_at, or null.
function fullInMinutes(s) {
  if (!s.forecast || s.free === 0) return null;        // already full: nothing to predict
  const full = parseTs(s.forecast.full_at);
  const base = parseTs(s.ts) ?? parseTs(s.forecast.ts);
  if (full === null || base === null) return null;
  return Math.max(0, Math.round((full - base) / 60000));
}

function fmt(v, digits = 0) {
  return v === null || v === undefined ? '–' : Number(v).toFixed(digits);
}

function statusName(status) {
  return { open: 'open', almost_full: 'almost full', full: 'full', closed: 'closed',
    unknown: 'no data' }[status]
    || status;
}

function statusText(s) {
  const t = statusName(s.status);
  return s.stale ? `${t} (stale)` : t;
}

// "9/10": a zone's or category's free of its capacity (free is null before the lot has data)
const groupLabel = (g) => `${g.free === null ? '–' : g.free}/${g.capacity ?? '–'}`;

// The popup's share of SPEC §10: unknown bays, zones (with their status), categories.
function groupsHtml(s) {
  let html = s.unknown === null ? '' : `<div class="punknown">${esc(s.unknown)} bays unknown</div>`;
  if (s.zones.length) {
    html += '<ul class="pzones">' + s.zones.map((z) => `<li data-zone="${esc(z.id)}">`
      + `${esc(z.name)}: <b>${esc(groupLabel(z))}</b> · ${esc(statusName(z.status))}</li>`).join('')
      + '</ul>';
  }
  if (s.categories.length) {
    html += '<ul class="pcats">' + s.categories.map((c) => `<li data-cat="${esc(c.name)}">`
      + `${esc(c.name.replace('_', ' '))}: <b>${esc(groupLabel(c))}</b></li>`).join('') + '</ul>';
  }
  return html;
}

// The availability's zones and categories, kept only as far as they are well-formed.
function parseGroups(s, msg) {
  s.zones = Array.isArray(msg.zones) ? msg.zones.filter((z) => z && typeof z.id === 'string')
    .map((z) => ({ id: z.id, name: typeof z.name === 'string' ? z.name : z.id,
      free: num(z.free), capacity: num(z.capacity), status: String(z.status ?? 'unknown') })) : [];
  const c = msg.categories && typeof msg.categories === 'object' ? msg.categories : {};
  s.categories = Object.entries(c).filter(([, v]) => v && typeof v === 'object')
    .map(([name, v]) => ({ name, free: num(v.free), capacity: num(v.capacity) }));
  s.unknown = num(msg.unknown);
}

function detailsHtml(s) {
  const trend = s.trend === null ? '–' : `${s.trend > 0 ? '+' : ''}${fmt(s.trend, 1)} /h`;
  let html = `<div class="popup" data-lot="${esc(s.id)}"><h3>${esc(s.name)}</h3>`
    + `<div><b class="pfree">${esc(label(s))}</b> free · ${esc(statusText(s))}</div>`
    + `<div>trend <span class="ptrend">${esc(trend)}</span></div>` + groupsHtml(s);
  const fin = fullInMinutes(s);
  if (fin !== null) html += `<div class="warn pfull">full in ${fin} min</div>`;
  const hz = s.forecast && Array.isArray(s.forecast.horizons) ? s.forecast.horizons : [];
  if (hz.length) {
    html += '<table class="pforecast"><tr><th>in</th><th>free</th><th>80 % range</th></tr>';
    for (const h of hz) {
      html += `<tr data-minutes="${esc(h.minutes)}"><td>${esc(h.minutes)} min</td>`
        + `<td>${fmt(h.free)}</td><td>${fmt(h.low)}–${fmt(h.high)}</td></tr>`;
    }
    html += '</table>';
  }
  if (s.ts) html += `<div class="meta">as of ${esc(s.ts)}</div>`;
  return html + '</div>';
}

function markerStyle(s) {
  const c = COLOURS[s.status] || COLOURS.unknown;
  if (s.stale) {
    return { color: '#555', weight: 2, dashArray: '4 3', fillColor: STALE_FILL, fillOpacity: 0.9 };
  }
  if (s.status === 'unknown') {
    return { color: c, weight: 3, dashArray: null, fillColor: '#ffffff', fillOpacity: 0.2 };
  }
  return { color: '#ffffff', weight: 2, dashArray: null, fillColor: c, fillOpacity: 0.9 };
}

function setData(el, s) {
  if (!el) return;
  el.setAttribute('data-lot', s.id);
  el.setAttribute('data-free', s.free === null ? '' : String(Math.round(s.free)));
  el.setAttribute('data-capacity', s.capacity === null ? '' : String(s.capacity));
  el.setAttribute('data-status', s.status);
  el.setAttribute('data-stale', s.stale ? 'true' : 'false');
}

// The free/capacity label beside a marker is a divIcon whose text is set directly: Leaflet's
// permanent tooltips measure themselves on each change, which with thousands of lots stalls the
// page for seconds.
function renderMarker(s) {
  if (!placed(s)) {
    if (s.marker) {
      markersLayer.removeLayer(s.marker);
      markersLayer.removeLayer(s.label);
      s.marker = null; s.label = null; s.labelEl = null;
    }
    return;
  }
  if (!s.marker) {
    s.marker = L.circleMarker([s.lat, s.lon], { radius: 11, ...markerStyle(s) });
    s.marker.bindPopup(() => detailsHtml(s));
    s.marker.addTo(markersLayer);
    s.label = L.marker([s.lat, s.lon], {
      icon: L.divIcon({
        className: 'lot-label', iconSize: null, iconAnchor: [-14, 9],
        html: `<span class="lot-text" data-lot="${esc(s.id)}"></span>`,
      }),
      interactive: false, keyboard: false,
    }).addTo(markersLayer);
    s.labelEl = s.label.getElement().firstChild;
    scheduleFit();
  } else {
    s.marker.setLatLng([s.lat, s.lon]);
    s.label.setLatLng([s.lat, s.lon]);
    s.marker.setStyle(markerStyle(s));
  }
  const el = s.marker.getElement();
  if (el) {
    setData(el, s);
    el.setAttribute('class', `lot-marker leaflet-interactive status-${s.status}${s.stale ? ' stale' : ''}`);
  }
  s.labelEl.textContent = label(s);
  if (s.marker.isPopupOpen()) s.marker.setPopupContent(detailsHtml(s));
}

function renderItem(s) {
  if (!s.item) {
    s.item = document.createElement('li');
    s.item.addEventListener('click', () => {
      if (s.marker) { map.setView(s.marker.getLatLng(), Math.max(map.getZoom(), 15)); s.marker.openPopup(); }
    });
    insertSorted(s);
  }
  setData(s.item, s);
  s.item.setAttribute('data-placed', placed(s) ? 'true' : 'false');
  const fin = fullInMinutes(s);
  const trend = s.trend === null ? '' : ` · ${s.trend > 0 ? '+' : ''}${fmt(s.trend, 1)}/h`;
  s.item.innerHTML = `<span class="free">${esc(label(s))}</span>`
    + `<span class="name">${esc(s.name)}</span>`
    + `<div class="meta">${esc(statusText(s))}${esc(trend)}`
    + (placed(s) ? '' : ' · <span class="nopos" title="no coordinates configured">not on the map</span>')
    + (fin !== null ? ` · <span class="warn">full in ${fin} min</span>` : '') + '</div>';
  s.item.title = s.forecast ? forecastText(s) : '';
}

function forecastText(s) {
  const hz = Array.isArray(s.forecast.horizons) ? s.forecast.horizons : [];
  return hz.map((h) => `in ${h.minutes} min: ${fmt(h.free)} (${fmt(h.low)}–${fmt(h.high)})`).join('\n');
}

function sortKey(s) { return `${String(s.name).toLowerCase()}\u0000${s.id}`; }

// The list in name order: `order` mirrors #lots, found by binary search (a city has thousands).
const order = [];
function orderIndex(key) {
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (order[mid].sortKey < key) lo = mid + 1; else hi = mid;
  }
  return lo;
}

function insertSorted(s) {
  s.sortKey = sortKey(s);
  const i = orderIndex(s.sortKey);
  $('lots').insertBefore(s.item, i < order.length ? order[i].item : null);
  order.splice(i, 0, s);
}

function removeSorted(s) {
  const i = orderIndex(s.sortKey);
  if (order[i] === s) order.splice(i, 1);
  s.item.remove();
  s.item = null;
}

let noCoordsTimer = null;
function updateNoCoords() {
  if (noCoordsTimer) return;
  noCoordsTimer = setTimeout(() => {
    noCoordsTimer = null;
    $('nocoords').hidden = !order.some((x) => !placed(x));
  }, 100);
}

// Changes are drawn in batches: the retained messages of every lot arrive at once on connect.
const dirty = new Set();
let flushTimer = null;
function render(s) {
  dirty.add(s);
  if (!flushTimer) flushTimer = setTimeout(flush, 20);
}

function flush() {
  flushTimer = null;
  for (const s of dirty) {
    // a name change moves the item
    if (s.item && s.sortKey !== sortKey(s)) removeSorted(s);
    renderItem(s);
    renderMarker(s);
  }
  dirty.clear();
  updateNoCoords();
}

let fitTimer = null;
function scheduleFit() {
  if (userMoved || fitTimer) return;
  fitTimer = setTimeout(() => { fitTimer = null; fitToMarkers(); }, 50);
}

function fitToMarkers() {
  const pts = [...lots.values()].filter(placed).map((s) => [s.lat, s.lon]);
  if (!pts.length) return;
  const key = pts.map((p) => p.join(',')).sort().join(';');
  if (key === lastBoundsKey) return;
  lastBoundsKey = key;
  fitting = true;
  map.fitBounds(L.latLngBounds(pts), { padding: [40, 40], maxZoom: 16, animate: false });
  fitting = false;
}

function onSummaryPage(msg) {
  if (!msg || !Array.isArray(msg.lots)) return;
  if (msg.page === undefined || msg.page === 1) {
    const t = $('totals');
    if (num(msg.free) !== null && num(msg.capacity) !== null) {
      t.dataset.free = String(msg.free);
      t.dataset.capacity = String(msg.capacity);
      t.textContent = `${msg.free} of ${msg.capacity} spaces free`;
    }
  }
  for (const e of msg.lots) {
    if (!e || typeof e.lot !== 'string') continue;
    const s = lotState(e.lot);
    if (typeof e.name === 'string') s.name = e.name;
    s.lat = num(e.lat);
    s.lon = num(e.lon);
    if (num(e.capacity) !== null) s.capacity = e.capacity;
    // the summary is sent less often than availability: it fills in only lots not yet heard of
    if (!s.haveAvail) {
      s.free = num(e.free);
      if (typeof e.status === 'string') s.status = e.status;
      s.stale = e.stale === true;
    }
    render(s);
  }
}

function onAvailability(id, msg) {
  if (!msg || typeof msg !== 'object') return;
  const s = lotState(id);
  // QoS 1 may redeliver: an availability older than the one shown is ignored
  const t = parseTs(msg.ts);
  const cur = parseTs(s.ts);
  if (s.haveAvail && t !== null && cur !== null && t < cur) return;
  s.haveAvail = true;
  if (typeof msg.name === 'string') s.name = msg.name;
  if (num(msg.capacity) !== null) s.capacity = msg.capacity;
  s.free = num(msg.free);
  s.status = typeof msg.status === 'string' ? msg.status : 'unknown';
  s.stale = msg.stale === true;
  s.ts = msg.ts ?? null;
  s.trend = num(msg.trend_per_hour);
  parseGroups(s, msg);
  render(s);
}

function onForecast(id, msg) {
  if (!msg || typeof msg !== 'object') return;
  const s = lotState(id);
  s.forecast = msg;
  render(s);
}

function onMessage(prefix, topic, payload) {
  if (!payload || payload.length === 0) return;      // a cleared retained message
  let msg;
  try {
    msg = JSON.parse(new TextDecoder().decode(payload));
  } catch (e) {
    return;
  }
  const rest = topic.slice(prefix.length + 1).split('/');
  if (rest[0] === 'summary') onSummaryPage(msg);
  else if (rest.length === 2 && rest[1] === 'availability') onAvailability(rest[0], msg);
  else if (rest.length === 2 && rest[1] === 'forecast') onForecast(rest[0], msg);
}

function initMap(cfg) {
  map = L.map('map', { zoomControl: true, attributionControl: !!cfg.tile_url, worldCopyJump: true });
  if (typeof cfg.tile_url === 'string' && cfg.tile_url) {
    L.tileLayer(cfg.tile_url, {
      maxZoom: 19,
      attribution: typeof cfg.tile_attribution === 'string' ? cfg.tile_attribution : '',
    }).addTo(map);
  }
  map.setView([20, 0], 2);
  markersLayer = L.layerGroup().addTo(map);
  map.on('movestart zoomstart', () => { if (!fitting) userMoved = true; });
  window.addEventListener('resize', () => map.invalidateSize());
}

function connect(cfg) {
  const prefix = (typeof cfg.output_prefix === 'string' && cfg.output_prefix) || 'parking/out';
  const client = mqtt.connect(cfg.mqtt_ws_url, {
    clientId: `parkd-map-${Math.random().toString(16).slice(2, 10)}`,
    clean: true,
    reconnectPeriod: 3000,
    connectTimeout: 10000,
    protocolVersion: 4,
  });
  setConn('connecting', `connecting to ${cfg.mqtt_ws_url}`);
  client.on('connect', () => {
    setConn('connected', 'live');
    // the broker sends the retained messages in this order: each lot's availability first, so
    // the list fills at once; the summary (coordinates) can be large, and mosquitto 2.0's
    // WebSocket listener sends a large message slowly (README, "Live map")
    client.subscribe([
      `${prefix}/+/availability`, `${prefix}/+/forecast`, `${prefix}/summary`, `${prefix}/summary/+`,
    ], { qos: 0 });
  });
  client.on('reconnect', () => setConn('connecting', 'reconnecting…'));
  client.on('offline', () => setConn('offline', 'offline, retrying'));
  client.on('error', (e) => setConn('error', `broker: ${e && e.message ? e.message : e}`));
  client.on('message', (topic, payload) => onMessage(prefix, topic, payload));
  window.parkdMap = { lots, client };
}

async function start() {
  let cfg;
  try {
    const r = await fetch('config.json', { cache: 'no-store' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    cfg = await r.json();
  } catch (e) {
    setConn('error', `cannot read config.json: ${e.message}`);
    return;
  }
  initMap(cfg);
  if (typeof cfg.mqtt_ws_url !== 'string' || !cfg.mqtt_ws_url) {
    setConn('error', 'no broker configured (http.map.mqtt_ws_url)');
    return;
  }
  connect(cfg);
}

start();
