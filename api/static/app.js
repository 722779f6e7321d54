/* gridcover web map: vector tiles of the declared layers, heat maps drawn from the same tiles, layer switcher,
   collapsible legend, popups, search (grids, communities, addresses: the lookup with a key, the public search
   without), community filter, CSV/Excel export, a shareable URL of the view, printing, a loading sign;
   Chinese by default, English switchable. Everything is loaded from this server. */
(async function () {
  'use strict';
  const origin = window.location.origin;
  const base = window.location.pathname.replace(/[^/]*$/, '');
  const $ = (id) => document.getElementById(id);
  const cfg = await (await fetch(base + 'webmap/config.json')).json();
  const urlState = readUrl();
  let lang = urlState.lang || (window.localStorage && localStorage.getItem('gridcover-lang')) || 'zh';
  const tr = (zh, en) => (lang === 'zh' ? zh : en);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  const byId = Object.fromEntries(cfg.layers.map((l) => [l.id, l]));
  const GROUPS = ['elderly_alone', 'child_in_difficulty', 'mental_disorder', 'migrant', 'rental'];
  const communities = Object.fromEntries((cfg.communities || []).map((c) => [String(c.id), c]));
  // fits leave room for the legend box on the left of the map while it is open
  const fitPadding = () => ({ top: 30, bottom: 30, right: 30, left: document.getElementById('legend-box').open ? 280 : 30 });
  const messages = {}; // element id -> () => text, so that a language switch re-renders it
  function say(id, fn) { if (fn) messages[id] = fn; else delete messages[id]; $(id).textContent = fn ? fn() : ''; }
  const fieldName = (n) => { const names = cfg.field_names[n] || [n, n]; return tr(names[0], names[1]); };

  // --- the URL keeps the view: #map=zoom/lat/lon&layers=a,b&heat=id&community=id&lang=en --------------------
  function readUrl() {
    const out = {};
    const hash = new URLSearchParams(window.location.hash.replace(/^#/, ''));
    const m = (hash.get('map') || '').split('/').map(Number);
    if (m.length === 3 && m.every(Number.isFinite)) out.view = { zoom: m[0], center: [m[2], m[1]] };
    if (hash.has('layers')) out.layers = hash.get('layers').split(',').filter(Boolean);
    if (hash.get('heat')) out.heat = hash.get('heat');
    if (hash.get('community')) out.community = hash.get('community');
    if (['zh', 'en'].includes(hash.get('lang'))) out.lang = hash.get('lang');
    return out;
  }

  // --- styles: solid fills, hatched fills (problems, load), lines, circles ---------------------------------
  function colorExpr(s, fallbackField) {
    const fallback = (s.classes.find((c) => c.value === null) || s.classes[0]).color;
    const valued = s.classes.filter((c) => c.value !== null);
    if (!s.field || valued.length === 0) return fallbackField(s.classes[0].color);
    if (s.steps) {
      const expr = ['step', ['to-number', ['get', s.field], -1], fallbackField('#cccccc')];
      valued.slice().sort((a, b) => a.value - b.value).forEach((c) => expr.push(Number(c.value), fallbackField(c.color)));
      return expr;
    }
    const expr = ['match', ['to-string', ['get', s.field]]];
    valued.forEach((c) => expr.push(String(c.value), fallbackField(c.color)));
    expr.push(fallbackField(fallback));
    return expr;
  }
  const hatchName = (color) => 'hatch-' + color.replace('#', '');
  function hatchImage(color) { // 12 px diagonal stripes of the class colour (transparent colours: nothing)
    const size = 12, canvas = document.createElement('canvas');
    canvas.width = canvas.height = size;
    const ctx = canvas.getContext('2d');
    ctx.strokeStyle = color; ctx.lineWidth = 2;
    for (const o of [-size, 0, size]) { ctx.beginPath(); ctx.moveTo(o, size); ctx.lineTo(o + size, 0); ctx.stroke(); }
    return ctx.getImageData(0, 0, size, size);
  }

  function mapLayersOf(l) {
    const s = l.style;
    const common = () => ({ source: l.id, 'source-layer': l.id, minzoom: l.minzoom,
      layout: { visibility: visible[l.id] ? 'visible' : 'none' } });
    const color = colorExpr(s, (c) => c);
    if (s.kind === 'fill') {
      const fills = [Object.assign({ id: l.id + '-fill', type: 'fill',
        paint: { 'fill-color': color, 'fill-opacity': s.pattern ? 0.12 : s.opacity } }, common())];
      if (s.pattern) {
        fills.push(Object.assign({ id: l.id + '-hatch', type: 'fill',
          paint: { 'fill-pattern': colorExpr(s, hatchName), 'fill-opacity': s.opacity } }, common()));
      }
      const line = Object.assign({ id: l.id + '-line', type: 'line',
        paint: { 'line-color': s.outline || color, 'line-width': s.width } }, common());
      return { fills, lines: [line] };
    }
    if (s.kind === 'line') {
      return { fills: [], lines: [Object.assign({ id: l.id + '-line', type: 'line', paint: { 'line-color': color, 'line-width': s.width } }, common())] };
    }
    return { fills: [], lines: [Object.assign({ id: l.id + '-circle', type: 'circle', paint: {
      'circle-color': color, 'circle-radius': s.radius, 'circle-opacity': s.opacity,
      'circle-stroke-color': s.outline || '#ffffff', 'circle-stroke-width': 1 } }, common())] };
  }

  const visible = Object.fromEntries(cfg.layers.map((l) => [l.id, urlState.layers ? urlState.layers.includes(l.id) : l.visible]));
  const style = { version: 8, sources: {}, layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#f2efe9' } }] };
  if (cfg.basemap) {
    style.sources.basemap = { type: 'raster', tiles: [cfg.basemap], tileSize: 256 };
    style.layers.push({ id: 'basemap', type: 'raster', source: 'basemap' });
  }
  // Base layers (streets … buildings): their fills, then the heat map's place, then their outlines; the
  // layers of findings (reach, problems, blind spots, facilities) above.
  const overlayAt = cfg.layers.findIndex((l) => ['h3_reach', 'coverage_issues', 'blindspots', 'facilities'].includes(l.id));
  const baseLayers = overlayAt < 0 ? cfg.layers : cfg.layers.slice(0, overlayAt);
  const layerIds = {};
  const baseFills = [], baseLines = [], overlays = [];
  for (const l of cfg.layers) {
    style.sources[l.id] = { type: 'vector', tiles: [origin + base + 'tiles/' + l.id + '/{z}/{x}/{y}.mvt'],
      minzoom: l.minzoom, maxzoom: 16, promoteId: l.id_field };
    const { fills, lines } = mapLayersOf(l);
    layerIds[l.id] = [...fills, ...lines].map((x) => x.id);
    if (baseLayers.includes(l)) { baseFills.push(...fills); baseLines.push(...lines); } else overlays.push(...fills, ...lines);
  }
  style.layers.push(...baseFills, ...baseLines, ...overlays);
  const heatBefore = baseLines.length ? baseLines[0].id : (overlays[0] && overlays[0].id);
  if (byId.communities) {
    style.layers.push({ id: 'community-mask', type: 'fill', source: 'communities', 'source-layer': 'communities',
      filter: ['==', ['get', 'id'], '\u0000'], layout: { visibility: 'none' }, paint: { 'fill-color': '#ffffff', 'fill-opacity': 0.65 } });
    style.layers.push({ id: 'communities-highlight', type: 'line', source: 'communities', 'source-layer': 'communities',
      filter: ['==', ['get', 'id'], '\u0000'], paint: { 'line-color': '#00838f', 'line-width': 4 } });
  }
  if (byId.grids) {
    style.layers.push({ id: 'grids-highlight', type: 'line', source: 'grids', 'source-layer': 'grids',
      filter: ['==', ['get', 'id'], '\u0000'], paint: { 'line-color': '#00e5ff', 'line-width': 4 } });
  }
  style.sources.found = { type: 'geojson', data: { type: 'FeatureCollection', features: [] } };
  style.layers.push({ id: 'found', type: 'line', source: 'found', paint: { 'line-color': '#00b8d4', 'line-width': 3, 'line-dasharray': [2, 1] } });

  const options = { container: 'map', style, preserveDrawingBuffer: true,
    attributionControl: { compact: true, customAttribution: 'gridcover' } };
  if (urlState.view) { options.center = urlState.view.center; options.zoom = urlState.view.zoom; }
  else if (cfg.bounds) { options.bounds = cfg.bounds; options.fitBoundsOptions = { padding: fitPadding() }; }
  else { options.center = [104.07, 30.66]; options.zoom = 13; }
  const map = new maplibregl.Map(options);
  window.map = map;
  map.addControl(new maplibregl.NavigationControl(), 'top-left');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-right');
  map.on('styleimagemissing', (e) => {
    if (e.id.startsWith('hatch-') && !map.hasImage(e.id)) map.addImage(e.id, hatchImage('#' + e.id.slice(6)));
  });

  // --- the loading sign -----------------------------------------------------------------------------------
  const loadingEl = $('loading');
  let loadingSince = null;
  function showLoading() { loadingSince = loadingSince || performance.now(); loadingEl.hidden = false; }
  map.on('dataloading', showLoading);
  map.on('idle', () => {
    loadingEl.hidden = true;
    if (loadingSince !== null) { window.gridcoverLastLoadMs = Math.round(performance.now() - loadingSince); loadingSince = null; }
  });

  // --- layer switcher ---------------------------------------------------------------------------------------
  function applyVisibility(id) {
    for (const mid of layerIds[id]) map.setLayoutProperty(mid, 'visibility', visible[id] ? 'visible' : 'none');
  }
  function renderSwitcher() {
    const ul = $('layers');
    ul.innerHTML = '';
    for (const l of cfg.layers.slice().reverse()) {
      const li = document.createElement('li');
      li.innerHTML = `<label><input type="checkbox" id="toggle-${esc(l.id)}" ${visible[l.id] ? 'checked' : ''}> ${esc(tr(l.title_zh, l.title_en))}</label>`;
      ul.appendChild(li);
      li.querySelector('input').addEventListener('change', (ev) => {
        visible[l.id] = ev.target.checked;
        applyVisibility(l.id);
        renderLegend(); renderExport(); writeUrl();
      });
    }
  }

  // --- heat maps: a fill of the H3 cells (or blind spots) from their vector tiles, above the base layers -----
  let heatId = '';
  const rgba = (hex) => {
    const h = hex.replace('#', ''), n = (i) => parseInt(h.slice(i, i + 2), 16);
    return `rgba(${n(0)},${n(2)},${n(4)},${h.length === 8 ? (n(6) / 255).toFixed(3) : 1})`;
  };
  function renderHeatOptions() {
    const select = $('heat');
    const groups = { coverage: tr('生活圈覆盖', 'Life-circle coverage'), category: tr('按设施类别', 'By facility category'),
      blindspots: tr('盲区', 'Blind spots') };
    let html = `<option value="">${esc(tr('不显示', 'none'))}</option>`;
    for (const [g, label] of Object.entries(groups)) {
      const items = cfg.heats.filter((h) => h.group === g);
      if (!items.length) continue;
      html += `<optgroup label="${esc(label)}">` + items.map((h) =>
        `<option value="${esc(h.id)}" ${h.id === heatId ? 'selected' : ''} title="${esc(tr(h.title_zh, h.title_en))}">${esc(tr(h.title_zh, h.title_en))}</option>`).join('') + '</optgroup>';
    }
    select.innerHTML = html;
  }
  function stepBack(on) { // while a heat map is shown, the fills under and over it fade; outlines stay
    for (const l of cfg.layers) {
      if (l.style.kind !== 'fill') continue;
      const full = l.style.pattern ? 0.12 : l.style.opacity;
      map.setPaintProperty(l.id + '-fill', 'fill-opacity', on ? full * 0.25 : full);
      if (l.style.pattern) map.setPaintProperty(l.id + '-hatch', 'fill-opacity', on ? l.style.opacity * 0.4 : l.style.opacity);
    }
  }
  function setHeat(id) {
    const heat = cfg.heats.find((h) => h.id === id);
    if (map.getLayer('heat')) map.removeLayer('heat');
    heatId = heat ? id : '';
    if (heat && byId[heat.layer]) {
      showLoading();
      const ramp = ['interpolate', ['linear'], ['to-number', ['get', heat.value], 0]];
      heat.stops.forEach(([v, c]) => ramp.push(Number(v), rgba(c)));
      map.addLayer({ id: 'heat', type: 'fill', source: heat.layer, 'source-layer': heat.layer, minzoom: byId[heat.layer].minzoom,
        filter: heat.layer === 'h3_reach' ? ['all', ['has', heat.value], ['>', ['to-number', ['get', 'households'], 0], 0]] : ['has', heat.value],
        paint: { 'fill-color': ramp, 'fill-opacity': 0.9, 'fill-antialias': false } },
      map.getLayer(heatBefore) ? heatBefore : undefined);
    }
    stepBack(!!heatId);
    $('heat').value = heatId;
    renderLegend(); writeUrl();
    if (openPopup) openPopup.refresh();
  }
  $('heat').addEventListener('change', (ev) => setHeat(ev.target.value));

  // --- legend -----------------------------------------------------------------------------------------------
  function swatch(l, c) {
    if (l.style.kind === 'circle') return `<span class="swatch circle" style="background:${esc(c.color)}"></span>`;
    if (l.style.kind === 'line') return `<span class="swatch line" style="border-color:${esc(c.color)}"></span>`;
    if (l.style.pattern) return `<span class="swatch hatch" style="--c:${esc(c.color)}; border-color:${esc(l.style.outline || '#777')}"></span>`;
    return `<span class="swatch" style="background:${esc(c.color)}; opacity:${Math.max(0.45, l.style.opacity)}"></span>`;
  }
  function renderLegend() {
    let html = '';
    const heat = cfg.heats.find((h) => h.id === heatId);
    if (heat) {
      const lo0 = heat.stops[0][0], span = (heat.stops[heat.stops.length - 1][0] - lo0) || 1;
      const stops = heat.stops.map(([v, c]) => `${rgba(c)} ${(100 * (v - lo0) / span).toFixed(0)}%`).join(', ');
      const blind = heat.group === 'blindspots';
      const lo = blind ? tr('低', 'low') : tr('0%（无户可达）', '0% (no household)');
      const hi = blind ? tr('高（红色预警）', 'high (red)') : tr('100%（全部可达）', '100% (every household)');
      html += `<div class="legend-layer"><b>${esc(tr('热力图：', 'Heat map: '))}${esc(tr(heat.title_zh, heat.title_en))}</b>` +
        `<div class="ramp" style="background: linear-gradient(to right, ${stops})"></div>` +
        `<div class="ramp-labels"><span>${esc(lo)}</span><span>${esc(hi)}</span></div>` +
        (blind ? '' : `<div class="legend-hint">${esc(tr('可在所属生活圈步行时间内到达的户比例', 'share of households within the walking time of its tier'))}</div>`) + '</div>';
    }
    for (const l of cfg.layers.slice().reverse()) {
      if (!visible[l.id]) continue;
      html += `<div class="legend-layer"><b>${esc(tr(l.title_zh, l.title_en))}</b>` + l.style.classes.map((c) =>
        `<div>${swatch(l, c)}${esc(tr(c.zh, c.en))}</div>`).join('') + '</div>';
    }
    $('legend').innerHTML = html || `<div class="legend-hint">${esc(tr('未选择图层', 'no layer shown'))}</div>`;
  }

  // --- values in popups: one table of coded values (cfg.value_names), the legend's class names, community names --
  function codeName(name, value, l) {
    const table = cfg.value_names[name];
    if (table && table[value]) return tr(table[value][0], table[value][1]);
    if (l && l.style.field === name) {
      const c = l.style.classes.find((x) => x.value !== null && String(x.value) === String(value));
      if (c) return tr(c.zh, c.en);
    }
    if (name === 'community_id' || name === 'community_ids') {
      const c = communities[String(value)];
      if (c) return c.name;
    }
    if (name === 'grid_ids' || name === 'grid_id') {
      const g = grids.find((x) => x.id === String(value));
      if (g && g.name) return g.name;
    }
    if (name === 'category') {
      const c = (cfg.categories || []).find((x) => x.id === value);
      if (c) return tr(c.zh, c.en);
    }
    return String(value);
  }
  function formatValue(name, value, l) {
    if (typeof value === 'string' && /^\[.*\]$/.test(value)) {
      try { value = JSON.parse(value.replace(/'/g, '"')); } catch (err) { /* keep the text */ }
    }
    if ((name === 'community_ids' || name === 'grid_ids') && typeof value === 'string') value = value.split(',').filter(Boolean);
    if (value === null || value === undefined || value === '') {
      return GROUPS.includes(name) ? tr(`少于${cfg.k}（不公开）`, `fewer than ${cfg.k} (withheld)`) : '—';
    }
    if (value === true) return tr('是', 'yes');
    if (value === false) return tr('否', 'no');
    if (Array.isArray(value)) return value.map((v) => codeName(name, v, l)).join(tr('、', ', '));
    if (typeof value === 'number' && name.endsWith('share')) return (100 * value).toFixed(0) + '%';
    if (typeof value === 'number' && name === 'households_per_worker') return value.toFixed(1);
    return codeName(name, value, l);
  }
  function loadLine(props, l) {
    const label = formatValue('load', props.load, l);
    const hh = props.households, w = props.workers, per = props.households_per_worker;
    if (hh === undefined || hh === null) return label;
    const detail = w ? tr(`${hh}户 ÷ ${w}名专职网格员 = ${Number(per).toFixed(1)}户/人`, `${hh} households ÷ ${w} full-time workers = ${Number(per).toFixed(1)}`)
      : tr(`${hh}户，无专职网格员`, `${hh} households, no full-time worker`);
    return tr(`${label}；${detail}`, `${label}; ${detail}`);
  }
  function rowsHtml(l, props) {
    return l.popup.filter((n) => n in props || GROUPS.includes(n)).map((n) => {
      const value = n === 'load' && l.id === 'grids' ? loadLine(props, l) : formatValue(n, props[n], l);
      return `<tr><td>${esc(fieldName(n))}</td><td>${esc(value)}</td></tr>`;
    }).join('');
  }
  function reachHtml(props) { // an H3 cell: minutes to each basic category and which are out of reach
    const basic = (cfg.categories || []).filter((c) => c.basic);
    const missing = basic.filter((c) => Number(props['within_' + c.id] || 0) < 0.5);
    const heat = cfg.heats.find((h) => h.id === heatId);
    let html = `<tr><td>${esc(fieldName('households'))}</td><td>${esc(formatValue('households', props.households))}</td></tr>` +
      `<tr><td>${esc(fieldName('basic_share'))}</td><td>${esc(formatValue('basic_share', props.basic_share))}</td></tr>`;
    if (heat && heat.layer === 'h3_reach' && props[heat.value] !== undefined) {
      html += `<tr class="now"><td>${esc(tr(heat.title_zh, heat.title_en))}</td><td>${esc((100 * Number(props[heat.value])).toFixed(0))}%</td></tr>`;
    }
    html += `<tr><td>${esc(tr('缺少的基本设施', 'basic services out of reach'))}</td><td>${esc(missing.length
      ? missing.map((c) => tr(c.zh, c.en)).join(tr('、', ', ')) : tr('无', 'none'))}</td></tr></table>`;
    html += `<table class="reach"><tr><th>${esc(tr('设施', 'service'))}</th><th>${esc(tr('步行（分钟）', 'walk (min)'))}</th><th>${esc(tr('目标', 'target'))}</th></tr>` +
      basic.map((c) => {
        const m = props[`reach_${c.id}_min`];
        const within = Number(props['within_' + c.id] || 0) >= 0.5;
        const minutes = m === null || m === undefined || Number.isNaN(Number(m)) ? tr('30分钟内无', 'none within 30') : Number(m).toFixed(1);
        return `<tr class="${within ? 'ok' : 'miss'}"><td>${esc(tr(c.zh, c.en))}</td><td>${esc(minutes)}</td><td>≤${c.tier}</td></tr>`;
      }).join('');
    return html;
  }

  // --- popups (re-rendered on a language switch) --------------------------------------------------------------
  let openPopup = null;
  const interactive = () => {
    const ids = [];
    for (const l of cfg.layers) if (visible[l.id]) ids.push(layerIds[l.id][0]);
    if (map.getLayer('heat')) ids.splice(baseLayers.filter((l) => visible[l.id]).length, 0, 'heat');
    return ids.reverse().filter((id) => map.getLayer(id));
  };
  function popupHtml(l, props, fid) {
    const title = props.name ? `${props.name}` : fid;
    const body = l.id === 'h3_reach' ? reachHtml(props) : rowsHtml(l, props);
    return `<div class="popup"><h3>${esc(tr(l.title_zh, l.title_en))} ${esc(title)}</h3><table>${body}</table></div>`;
  }
  function showPopup(lngLat, render) {
    if (openPopup) openPopup.popup.remove();
    const popup = new maplibregl.Popup({ maxWidth: '360px' }).setLngLat(lngLat).setHTML(render()).addTo(map);
    const entry = { popup, refresh: () => popup.setHTML(render()) };
    openPopup = entry;
    popup.on('close', () => { if (openPopup === entry) openPopup = null; });
  }
  map.on('click', async (e) => {
    if (window.gridcoverEditing) return; // the redraw panel (redraw.js) owns clicks while editing
    const found = map.queryRenderedFeatures(e.point, { layers: interactive() });
    if (!found.length) return;
    const f = found[0];
    const l = byId[f.source];
    const fid = f.properties[l.id_field];
    let props = Object.assign({}, f.properties);
    try {
      const r = await fetch(base + 'collections/' + encodeURIComponent(l.id) + '/items/' + encodeURIComponent(fid));
      if (r.ok) props = Object.assign(props, (await r.json()).properties);
    } catch (err) { /* keep the tile's properties */ }
    showPopup(e.lngLat, () => popupHtml(l, props, fid));
  });
  map.on('mousemove', (e) => {
    map.getCanvas().style.cursor = map.queryRenderedFeatures(e.point, { layers: interactive() }).length ? 'pointer' : '';
  });

  // --- community filter ---------------------------------------------------------------------------------------
  let communityId = '';
  const communityFiltered = { grids: 'community_id', coverage_issues: 'community_id' };
  function renderCommunities() {
    const select = $('community');
    select.innerHTML = `<option value="">${esc(tr('全部社区', 'all communities'))}</option>` + (cfg.communities || []).map((c) =>
      `<option value="${esc(c.id)}" ${String(c.id) === communityId ? 'selected' : ''}>${esc(c.name || c.id)}${c.fringe ? esc(tr('（城乡结合部）', ' (fringe)')) : ''}</option>`).join('');
  }
  function setCommunity(id, { fit = true } = {}) {
    $('search-results').innerHTML = '';
    say('search-msg', null);
    communityId = communities[id] ? String(id) : '';
    const none = ['==', ['get', 'id'], '\u0000'];
    for (const [lid, field] of Object.entries(communityFiltered)) {
      if (!layerIds[lid]) continue;
      for (const mid of layerIds[lid]) map.setFilter(mid, communityId ? ['==', ['to-string', ['get', field]], communityId] : null);
    }
    if (layerIds.blindspots) {
      for (const mid of layerIds.blindspots) map.setFilter(mid, communityId ? ['in', communityId, ['to-string', ['get', 'community_ids']]] : null);
    }
    if (map.getLayer('community-mask')) {
      map.setFilter('community-mask', communityId ? ['!=', ['to-string', ['get', 'id']], communityId] : none);
      map.setLayoutProperty('community-mask', 'visibility', communityId ? 'visible' : 'none');
      map.setFilter('communities-highlight', communityId ? ['==', ['to-string', ['get', 'id']], communityId] : none);
    }
    const c = communities[communityId];
    if (c && fit) map.fitBounds([[c.bbox[0], c.bbox[1]], [c.bbox[2], c.bbox[3]]], { padding: fitPadding() });
    else if (!c && fit && cfg.bounds) map.fitBounds([[cfg.bounds[0], cfg.bounds[1]], [cfg.bounds[2], cfg.bounds[3]]], { padding: fitPadding() });
    $('community').value = communityId;
    renderExport(); writeUrl();
  }
  $('community').addEventListener('change', (ev) => setCommunity(ev.target.value));

  // --- export of a layer (CSV, Excel) and the link to the report -------------------------------------------------
  function renderExport() {
    const select = $('export-layer');
    const chosen = select.value || (visible.grids ? 'grids' : '');
    const layers = cfg.layers.filter((l) => l.id !== 'streets');
    select.innerHTML = layers.map((l) => `<option value="${esc(l.id)}" ${l.id === chosen ? 'selected' : ''}>${esc(tr(l.title_zh, l.title_en))}</option>`).join('');
    const l = byId[select.value];
    if (!l) return;
    const filter = communityId && (l.queryables || []).includes('community_id') ? '&community_id=' + encodeURIComponent(communityId) : '';
    for (const f of ['csv', 'xlsx']) {
      const a = $('export-' + f);
      a.href = base + 'collections/' + encodeURIComponent(l.id) + '/items?f=' + f + filter;
      a.setAttribute('download', `${l.id}${communityId && filter ? '-' + communityId : ''}.${f}`);
    }
    $('export-scope').textContent = filter ? tr(`仅${communities[communityId].name}`, `${communities[communityId].name} only`)
      : (communityId ? tr('全街道（该图层不按社区筛选）', 'whole street (this layer has no community)') : tr('全街道', 'whole street'));
  }
  $('export-layer').addEventListener('change', renderExport);
  $('report-link').href = base + 'report';

  // --- search: grids and communities by name, addresses by the lookup (with a key) or the public search ------------
  let grids = [];
  try { grids = await (await fetch(base + 'webmap/grids.json')).json(); } catch (err) { grids = []; }
  $('grid-names').innerHTML = [...grids.map((g) => [g.name, g.worker_name || '']), ...(cfg.communities || []).map((c) => [c.name, ''])]
    .map(([v, label]) => `<option value="${esc(v)}">${esc(label)}</option>`).join('');
  const gridOf = (id) => grids.find((g) => g.id === id);
  const search = $('search');
  function fly(bbox, maxZoom) { map.fitBounds([[bbox[0], bbox[1]], [bbox[2], bbox[3]]], { padding: fitPadding(), maxZoom }); }
  function markFound(bbox, gridId) {
    const [x0, y0, x1, y1] = bbox;
    map.getSource('found').setData({ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]] } });
    if (map.getLayer('grids-highlight')) map.setFilter('grids-highlight', ['==', ['get', 'id'], gridId || '\u0000']);
    window.gridcoverFound = gridId || null;
  }
  function showAnswer(a) { // a place found: the grid and its worker, with whatever names the answer carries
    const rows = [[tr('地址', 'address'), a.address], [tr('楼栋', 'building'), a.building_name], [tr('小区', 'estate'), a.estate_name || a.estate],
      [tr('社区', 'community'), a.community_name], [tr('街道', 'street'), a.street_name], [tr('网格', 'grid'), a.grid_name],
      [tr('网格员', 'grid worker'), a.worker_name], [tr('网格员电话', 'worker phone'), a.worker_phone], [tr('说明', 'note'), a.note]]
      .filter(([, v]) => typeof v === 'string' || typeof v === 'number'); // names the answer may not carry are left out
    return `<div class="popup found-popup"><h3>${esc(tr('查找结果', 'Found'))}</h3><table>` +
      rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('') + '</table></div>';
  }
  function placeFound(bbox, answer) {
    fly(bbox, 16);
    markFound(bbox, answer.grid_id);
    const centre = [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2];
    map.once('moveend', () => showPopup(centre, () => showAnswer(Object.assign({}, answer, { note: answer.noteFn ? answer.noteFn() : undefined }))));
    say('search-msg', null);
  }
  async function featureBbox(layer, id) {
    const r = await fetch(base + 'collections/' + layer + '/items/' + encodeURIComponent(id));
    if (!r.ok) return null;
    const g = (await r.json()).geometry;
    const xs = [], ys = [];
    JSON.stringify(g.coordinates).replace(/-?\d+\.?\d*,-?\d+\.?\d*/g, (p) => { const [x, y] = p.split(',').map(Number); xs.push(x); ys.push(y); return p; });
    return xs.length ? [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)] : null;
  }
  async function lookupAddress(q) { // GET /lookup with the key of the redraw panel (role lookup or above)
    const key = window.sessionStorage && sessionStorage.getItem('gridcover-key');
    if (!key) return null;
    const r = await fetch(base + 'lookup?address=' + encodeURIComponent(q), { headers: { 'X-API-Key': key, Accept: 'application/json' } });
    if (!r.ok) return null;
    const a = await r.json();
    if (!a.grid_id && !a.building_id && !a.estate_id) return null;
    const bbox = (a.building_id && await featureBbox('buildings', a.building_id)) || (a.estate_id && await featureBbox('estates', a.estate_id))
      || (gridOf(a.grid_id) || {}).bbox;
    if (!bbox) return null;
    const grid = gridOf(a.grid_id) || {};
    const community = communities[String(a.community_id)];
    return { bbox, answer: Object.assign({ address: q, grid_name: grid.name, community_name: community && community.name }, a,
      { noteFn: () => {
        const notes = [];
        if (a.covered === false) {
          const near = gridOf(a.nearest_grid_id);
          notes.push(tr(`不在任何网格内${near ? `，最近的网格：${near.name}` : ''}`, `in no grid${near ? `; nearest grid: ${near.name}` : ''}`));
        }
        if (a.method === 'address_estate') notes.push(tr('按小区定位（地址中的楼栋未找到）', 'placed by its estate (the building was not found)'));
        const problem = lang === 'zh' ? (a.problem_zh || a.message_zh || a.problem) : (a.problem || a.message);
        if (typeof problem === 'string' && problem) notes.push(problem);
        return notes.join(tr('；', '; ')) || undefined;
      } }) };
  }
  function answerOf(hit) {
    const grid = hit.grid || (hit.layer === 'grids' ? { id: hit.id, name: hit.name, worker_name: (gridOf(hit.id) || {}).worker_name } : {});
    return { address: hit.address || hit.name, grid_id: grid.id, grid_name: grid.name, worker_name: grid.worker_name,
      worker_phone: grid.worker_phone, community_name: hit.layer === 'communities' ? hit.name : undefined };
  }
  function listResults(results) {
    const ul = $('search-results');
    const kinds = { grids: tr('网格', 'grid'), communities: tr('社区', 'community'), estates: tr('小区', 'estate'), buildings: tr('楼栋', 'building') };
    ul.innerHTML = results.map((h, i) => `<li><button type="button" data-i="${i}">${esc(kinds[h.layer] || h.layer)} · ${esc(h.address || h.name || h.id)}</button></li>`).join('');
    ul.querySelectorAll('button').forEach((b) => b.addEventListener('click', () => { ul.innerHTML = ''; placeFound(results[+b.dataset.i].bbox, answerOf(results[+b.dataset.i])); }));
  }
  async function go() {
    const q = search.value.trim();
    $('search-results').innerHTML = '';
    if (!q) return;
    const g = grids.find((x) => x.name === q || x.id === q);
    say('search-msg', null);
    if (g) { fly(g.bbox, 17); markFound(g.bbox, g.id); return; }
    const c = (cfg.communities || []).find((x) => x.name === q);
    if (c) { setCommunity(String(c.id)); return; }
    say('search-msg', () => tr('查找中…', 'searching…'));
    let found = null;
    try { found = await lookupAddress(q); } catch (err) { found = null; }
    if (found) { placeFound(found.bbox, found.answer); return; }
    let results = [];
    try { results = (await (await fetch(base + 'webmap/search?q=' + encodeURIComponent(q))).json()).results || []; } catch (err) { results = []; }
    if (results.length === 1) placeFound(results[0].bbox, answerOf(results[0]));
    else if (results.length > 1) { listResults(results); say('search-msg', () => tr(`找到${results.length}处，请选择：`, `${results.length} places, pick one:`)); }
    else say('search-msg', () => tr(`未找到“${q}”`, `nothing found for "${q}"`));
  }
  search.addEventListener('change', () => { if (grids.some((x) => x.name === search.value.trim())) go(); });
  search.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); go(); } });
  $('search-go').addEventListener('click', go);

  // --- the view in the URL, the share button, printing ------------------------------------------------------------
  function viewUrl() {
    const c = map.getCenter();
    const hash = new URLSearchParams();
    hash.set('map', `${map.getZoom().toFixed(2)}/${c.lat.toFixed(5)}/${c.lng.toFixed(5)}`);
    hash.set('layers', cfg.layers.filter((l) => visible[l.id]).map((l) => l.id).join(','));
    if (heatId) hash.set('heat', heatId);
    if (communityId) hash.set('community', communityId);
    if (lang !== 'zh') hash.set('lang', lang);
    return window.location.href.replace(/#.*$/, '') + '#' + hash.toString().replace(/%2C/g, ',').replace(/%2F/g, '/');
  }
  function writeUrl() { window.history.replaceState(null, '', viewUrl()); }
  map.on('moveend', writeUrl);
  $('share').addEventListener('click', async () => {
    const url = viewUrl();
    window.history.replaceState(null, '', url);
    const box = $('share-url');
    box.hidden = false; box.value = url; box.select();
    let copied = false;
    try { await navigator.clipboard.writeText(url); copied = true; } catch (err) { copied = document.execCommand && document.execCommand('copy'); }
    say('share-msg', () => (copied ? tr('链接已复制，可发给同事：打开即是同一视图', 'link copied: it opens this same view')
      : tr('请复制上面的链接', 'copy the link above')));
  });
  function printTitle() {
    const heat = cfg.heats.find((h) => h.id === heatId);
    const c = communities[communityId];
    const parts = [tr('网格覆盖地图', 'Grid coverage map'), c ? c.name : tr('全街道', 'whole street')];
    if (heat) parts.push(tr(heat.title_zh, heat.title_en));
    $('print-title').textContent = parts.join(' · ');
    $('print-meta').textContent = `${tr('打印于', 'printed')} ${new Date().toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB')} · ${tr('数据版本', 'data version')} ${cfg.version}`;
  }
  let screenView = null;
  function toPrint() { // the printed frame shows at least what the screen showed
    if (screenView) return;
    printTitle();
    screenView = { center: map.getCenter(), zoom: map.getZoom(), bounds: map.getBounds() };
    map.resize();
    map.fitBounds(screenView.bounds, { padding: fitPadding(), animate: false });
  }
  function toScreen() {
    if (!screenView) return;
    map.resize();
    map.jumpTo({ center: screenView.center, zoom: screenView.zoom });
    screenView = null;
  }
  window.addEventListener('beforeprint', toPrint);
  window.addEventListener('afterprint', toScreen);
  if (window.matchMedia) window.matchMedia('print').addEventListener('change', (e) => (e.matches ? toPrint() : toScreen()));
  $('print').addEventListener('click', () => { printTitle(); window.print(); });

  // --- notes on the data (summary.json's data_quality) -------------------------------------------------------------
  function renderDataQuality() {
    const notes = cfg.data_quality || [];
    $('data-quality').hidden = notes.length === 0;
    $('data-quality-list').innerHTML = notes.map((n) => `<li>${esc(lang === 'zh' ? (n.message || n.message_en || '') : (n.message_en || n.message || ''))}</li>`).join('');
  }

  // --- language -----------------------------------------------------------------------------------------------------
  function applyLanguage() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.querySelectorAll('[data-zh]').forEach((el) => { el.textContent = tr(el.dataset.zh, el.dataset.en); });
    $('lang').textContent = lang === 'zh' ? 'English' : '中文';
    search.placeholder = tr('地址、楼栋、小区、网格或社区', 'address, building, estate, grid or community');
    $('note').textContent = tr(
      `特殊群体仅显示人数，且少于${cfg.k}人时不公开。底图${cfg.basemap ? '已配置' : '未配置（离线可用）'}。`,
      `Special groups are shown as counts only, withheld below ${cfg.k}. Base map ${cfg.basemap ? 'configured' : 'off (works offline)'}.`);
    renderSwitcher(); renderHeatOptions(); renderLegend(); renderCommunities(); renderExport(); renderDataQuality();
    if (openPopup) openPopup.refresh();
    for (const [id, fn] of Object.entries(messages)) $(id).textContent = fn();
    document.dispatchEvent(new CustomEvent('gridcover-language', { detail: lang }));
  }
  $('lang').addEventListener('click', () => {
    lang = lang === 'zh' ? 'en' : 'zh';
    if (window.localStorage) localStorage.setItem('gridcover-lang', lang);
    applyLanguage(); writeUrl();
  });

  // --- what other scripts of the page (redraw.js) use ----------------------------------------------------------------
  function setLayerVisible(id, on) {
    if (!(id in visible) || visible[id] === on) return;
    visible[id] = on;
    applyVisibility(id);
    renderSwitcher(); renderLegend(); writeUrl();
  }
  function reloadTiles() { // after a new grid version: the same URLs answer with the new version
    for (const l of cfg.layers) { const src = map.getSource(l.id); if (src && src.setTiles) src.setTiles(style.sources[l.id].tiles); }
  }
  window.gridcoverApp = { map, cfg, base, esc, tr, lang: () => lang, layerIds, isVisible: (id) => !!visible[id],
    setLayerVisible, reloadTiles, setHeat, setCommunity, viewUrl };
  document.dispatchEvent(new CustomEvent('gridcover-app', { detail: window.gridcoverApp }));
  applyLanguage();
  map.once('load', () => {
    if (urlState.community) setCommunity(urlState.community, { fit: !urlState.view });
    if (urlState.heat) setHeat(urlState.heat);
    writeUrl();
  });
  map.once('idle', () => { window.gridcoverReady = true; });
})();
