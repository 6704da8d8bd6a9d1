// The job page: a live mosaic over the websocket /ws/jobs/{id}/. The socket opens with a snapshot
// of the job and every tile of every stage (queued, sent, done or failed), then relays live
// events: tiles sent (from the dispatcher), tiles recorded (from the collector), status changes.
// The page asks for a fresh snapshot when it sees a gap (tiles_done ahead of the tiles it knows
// done), when the job ends, and after a long silence, so it always ends with the true state.
(() => {
  const $ = id => document.getElementById(id);
  let job = JSON.parse($("job-data").textContent);
  const api = `/api/jobs/${job.id}/`;
  const csrf = (document.cookie.match(/csrftoken=([^;]+)/) || [])[1];
  const mosaic = $("mosaic");
  const TERMINAL = ["done", "failed", "cancelled"];
  const PREVIEW_LIMIT = 1000; // beyond this many tiles the mosaic shows outlines, not pixels
  const QUIET_MS = 20000; // no message for this long on an unfinished job: the final one may be lost
  const PACE_MS = 10000; // the time left is read from the pace of the last ten seconds' tiles
  // Okabe & Ito's colour-blind-safe palette, given to workers in name order, as on the timeline.
  const PALETTE = window.ImagePipeTimeline.PALETTE;

  const tiles = new Map(); // "stage:index" -> {stage, index, place, state, worker, attempts, duration_ms}
  const canvases = [];
  // The stage shown: its tiles in order, drawn as "buttons" (view.cells) or on a "canvas"; the
  // tile that holds the keyboard (active) and the one whose details are open (selected).
  const view = {stage: null, followed: true, scale: 1, order: [], drawn: "buttons", cells: new Map(),
                board: null, pen: null, active: null, selected: null};
  // The pace of the stage under way, from live events only: [time, tiles done in the stage] as
  // they come, how long recent tiles took from sent to recorded, and when its last tiles were sent.
  const pace = {stage: null, samples: [], trips: [], lastSent: 0};
  const counts = [];
  // per stage: how many of its tiles are queued, sent, done, failed, and sent more than once
  const stageCounts = stage => (counts[stage] ||= {queued: 0, sent: 0, done: 0, failed: 0, retried: 0});
  const workersSeen = new Set(); // every worker a tile names, kept as tiles come: the legend's
  let done = job.tiles_done; // the job's count, as the events tell it
  let known = 0; // tiles the page holds as done
  let queue = [];
  let socket = null;
  let asked = false; // a snapshot request is on its way
  let lastMessage = Date.now();
  let receivedAt = Date.now(); // when the timings last came from the server

  const key = (stage, index) => `${stage}:${index}`;
  const stageCount = () => canvases.length || job.stages;
  let colours = new Map();

  // --- the mosaic -------------------------------------------------------------------------
  // A stage of up to BUTTONS_MAX tiles is one button per tile; a bigger one (a gigapixel's
  // 16,000) is drawn on one canvas, which the browser lays out and paints in a tenth of the time,
  // and which takes the keyboard itself: the arrow keys move a highlighted tile, announced, and
  // Enter opens its details, as with the buttons.

  const BUTTONS_MAX = Number(mosaic.dataset.buttonsMax || 2000);
  const fittingScale = stage => Math.min(1, $("mosaic-wrap").clientWidth / canvases[stage][0]);
  const stageTiles = stage => [...tiles.values()].filter(t => t.stage === stage);

  // Lays out a stage's tiles; laid out again (the window resized), the selected tile stays
  // selected, and keeps the keyboard focus if it had it.
  function layout(stage) {
    const kept = view.stage === stage ? view.active : null;
    const focused = mosaic.contains(document.activeElement);
    view.stage = stage;
    view.cells.clear();
    view.active = null;
    const canvas = canvases[stage];
    view.scale = fittingScale(stage);
    mosaic.style.width = `${canvas[0] * view.scale}px`;
    mosaic.style.height = `${canvas[1] * view.scale}px`;
    mosaic.dataset.stage = stage;
    mosaic.style.backgroundImage = "none";
    view.order = stageTiles(stage).sort((a, b) => a.index - b.index);
    view.drawn = view.order.length > BUTTONS_MAX ? "canvas" : "buttons";
    mosaic.dataset.drawn = view.drawn;
    if (view.drawn === "canvas") {
      mosaic.tabIndex = 0;
      mosaic.replaceChildren(view.board ||= document.createElement("canvas"));
      const ratio = window.devicePixelRatio || 1;
      Object.assign(view.board, {width: Math.round(canvas[0] * view.scale * ratio),
                                 height: Math.round(canvas[1] * view.scale * ratio)});
      view.board.style.width = mosaic.style.width;
      view.board.style.height = mosaic.style.height;
      view.pen = view.board.getContext("2d");
      view.pen.setTransform(ratio * view.scale, 0, 0, ratio * view.scale, 0, 0);
      view.order.forEach(t => paint(t));
    } else {
      mosaic.removeAttribute("tabindex");
      mosaic.replaceChildren(...view.order.map(cell));
    }
    const first = view.order[0];
    if (first) activate(view.order.find(t => t.index === kept) || first, focused);
    $("view-stage").value = stage;
    if (job.status === "done" && stage === stageCount() - 1) showResultUnder();
  }

  function cell(t) {
    const button = document.createElement("button");
    button.type = "button";
    button.tabIndex = -1;
    button.dataset.index = t.index;
    const [x, y, w, h] = t.place.map(v => v * view.scale);
    Object.assign(button.style, {left: `${x}px`, top: `${y}px`, width: `${w}px`, height: `${h}px`});
    view.cells.set(t.index, button);
    paint(t, button);
    return button;
  }

  const describe = t => `tile ${t.index}: ${t.state}${t.worker ? ` by ${t.worker}` : ""}` +
    (t.attempts > 1 ? `, sent ${t.attempts} times` : "");

  function paint(t, button = view.cells.get(t.index)) {
    if (t.stage !== view.stage) return;
    if (view.drawn === "canvas") return draw(t);
    if (!button) return;
    button.className = `tile ${t.state}${t.attempts > 1 ? " retried" : ""}` +
      (t.index === view.selected ? " selected" : "");
    button.dataset.worker = t.worker || "";
    if (t.worker) button.style.setProperty("--worker", colours.get(t.worker) || "#1d2430");
    button.setAttribute("aria-label", describe(t));
    const pixels = t.state === "done" && job.status !== "done" && job.tiles_total <= PREVIEW_LIMIT;
    button.style.backgroundImage = pixels ? `url(${api}tiles/${t.stage}/${t.index}/preview/)` : "";
  }

  // The canvas's look of each state, as job.css gives the buttons theirs.
  const hatch = (ink, paper, step) => {
    const tile = Object.assign(document.createElement("canvas"), {width: 2 * step, height: 2 * step});
    const pen = tile.getContext("2d");
    pen.fillStyle = paper;
    pen.fillRect(0, 0, 2 * step, 2 * step);
    pen.strokeStyle = ink;
    pen.lineWidth = step / 2;
    for (const offset of [-2 * step, 0, 2 * step]) {
      pen.beginPath();
      pen.moveTo(offset, 2 * step);
      pen.lineTo(offset + 2 * step, 0);
      pen.stroke();
    }
    return pen.createPattern(tile, "repeat");
  };
  let inks = null;

  // One tile on the canvas, in image pixels (the pen is scaled); lines are in screen pixels.
  function draw(t) {
    const pen = view.pen;
    inks ||= {sent: hatch("#c9d3e3", "#eef0f3", 4), failed: hatch("#b3261e", "#f6d5d2", 4)};
    const [x, y, w, h] = t.place;
    const px = 1 / view.scale;
    pen.clearRect(x, y, w, h);
    const line = (width, colour) => {
      pen.lineWidth = width * px;
      pen.strokeStyle = colour;
      pen.strokeRect(x + width * px / 2, y + width * px / 2, w - width * px, h - width * px);
    };
    if (t.state === "queued" || t.state === "sent") {
      pen.fillStyle = t.state === "sent" ? inks.sent : "#eef0f3";
      pen.fillRect(x, y, w, h);
      line(1, "rgba(29, 36, 48, .25)");
    } else if (t.state === "failed") {
      pen.fillStyle = inks.failed;
      pen.fillRect(x, y, w, h);
      line(3, "#b3261e");
    } else {
      line(2, colours.get(t.worker) || "#1d2430");
    }
    if (t.attempts > 1) {
      const corner = Math.min(14 * px, w / 2, h / 2);
      pen.fillStyle = "#1d2430";
      pen.beginPath();
      pen.moveTo(x + w - corner, y);
      pen.lineTo(x + w, y);
      pen.lineTo(x + w, y + corner);
      pen.fill();
    }
    if (t.index === view.selected || (t.index === view.active && document.activeElement === mosaic)) {
      line(6, "#fff");
      line(3, "#1d2430");
    }
  }

  function showResultUnder() {
    mosaic.style.backgroundImage = `url(${api}preview/result/?size=1000)`;
    mosaic.style.backgroundSize = "100% 100%";
    view.cells.forEach(button => { button.style.backgroundImage = "none"; });
  }

  // Called once per frame; does anything only when a worker joined the legend.
  function recolour() {
    if (workersSeen.size === colours.size) return;
    const names = [...workersSeen].sort();
    colours = new Map(names.map((name, i) => [name, PALETTE[i % PALETTE.length]]));
    for (const t of tiles.values()) paint(t);
    const legend = $("legend");
    legend.querySelectorAll(".worker-entry").forEach(entry => entry.remove());
    for (const name of names) {
      const entry = document.createElement("li");
      entry.className = "worker-entry";
      const swatch = Object.assign(document.createElement("span"), {className: "swatch worker"});
      swatch.style.setProperty("--worker", colours.get(name));
      entry.append(swatch, name);
      legend.append(entry);
    }
  }

  function summarise() {
    const c = stageCounts(view.stage);
    const parts = [`${c.done} done`, `${c.sent} in flight`, `${c.queued} queued`, `${c.failed} failed`];
    if (c.retried) parts.push(`${c.retried} sent more than once`);
    const stage = stageCount() > 1 ? `Stage ${view.stage + 1} of ${stageCount()}: ` : "";
    $("mosaic-summary").textContent = stage + parts.join(" · ");
    mosaic.setAttribute("aria-label", `tile mosaic, ${stage}${parts.join(", ")}`);
  }

  // --- selecting a tile: click, or arrow keys within the mosaic (one tab stop) ---------------

  const shown = index => tiles.get(key(view.stage, index));

  // Makes the tile the mosaic's one tab stop: its button, or the canvas's highlighted tile
  // (announced, since no element stands for it).
  function activate(t, focus = true) {
    const before = view.active === null ? null : shown(view.active);
    view.active = t.index;
    if (view.drawn === "canvas") {
      if (before) paint(before);
      paint(t);
      if (focus) {
        mosaic.focus();
        announce(describe(t));
      }
      return;
    }
    if (before) view.cells.get(before.index).tabIndex = -1;
    const button = view.cells.get(t.index);
    button.tabIndex = 0;
    if (focus) button.focus();
  }

  function nearest(from, dx, dy) {
    const centre = t => [t.place[0] + t.place[2] / 2, t.place[1] + t.place[3] / 2];
    const [fx, fy] = centre(from);
    let best = null, bestScore = Infinity;
    for (const t of view.order) {
      const [x, y] = centre(t);
      const along = (x - fx) * dx + (y - fy) * dy;
      if (along <= 1) continue;
      const score = along + 3 * Math.abs((x - fx) * dy + (y - fy) * dx);
      if (score < bestScore) { best = t; bestScore = score; }
    }
    return best;
  }

  // The canvas shows its highlighted tile only while it has the keyboard, as a button's focus ring.
  for (const change of ["focus", "blur"]) {
    mosaic.addEventListener(change, () => {
      const active = view.drawn === "canvas" && view.active !== null && shown(view.active);
      if (active) paint(active);
    });
  }

  const ARROWS = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};
  mosaic.addEventListener("keydown", e => {
    const onCanvas = view.drawn === "canvas" && e.target === mosaic;
    const button = e.target.closest(".tile");
    const from = onCanvas ? shown(view.active) : button && shown(Number(button.dataset.index));
    if (!from) return;
    let next = null;
    if (ARROWS[e.key]) next = nearest(from, ...ARROWS[e.key]);
    else if (e.key === "Home") next = view.order[0];
    else if (e.key === "End") next = view.order[view.order.length - 1];
    else if (onCanvas && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault();
      return showTile(from);
    } else return;
    e.preventDefault();
    if (next) activate(next);
  });
  mosaic.addEventListener("click", e => {
    let t = null;
    if (view.drawn === "canvas") {
      const box = view.board.getBoundingClientRect();
      const x = (e.clientX - box.left) / view.scale, y = (e.clientY - box.top) / view.scale;
      t = view.order.find(({place: [l, top, w, h]}) => l <= x && x < l + w && top <= y && y < top + h);
    } else {
      const button = e.target.closest(".tile");
      t = button && shown(Number(button.dataset.index));
    }
    if (!t) return;
    activate(t);
    showTile(t);
  });

  const when = iso => iso ? new Date(iso).toLocaleTimeString() : "–";

  async function showTile(t) {
    const before = view.selected === null ? null : shown(view.selected);
    view.selected = t.index;
    if (before) paint(before);
    paint(t);
    let detail = {...t, state: t.state};
    try {
      const response = await fetch(`${api}tiles/${t.stage}/${t.index}/`);
      if (response.ok) detail = {...detail, ...(await response.json())};
    } catch { /* the page's own knowledge of the tile is shown */ }
    const facts = [
      ["State", detail.state + (detail.attempts > 1 ? " (retried)" : "")],
      ["Stage", `${t.stage + 1} of ${stageCount()}`],
      ["Worker", detail.worker || "–"],
      ["Attempts", `sent ${detail.attempts || 0} time${detail.attempts === 1 ? "" : "s"}`],
      ["Partition / offset", detail.partition == null ? "–" : `${detail.partition} / ${detail.offset ?? "–"}`],
      ["Duration", detail.duration_ms == null ? "–" : `${detail.duration_ms} ms`],
      ["Sent", when(detail.dispatched_at)],
      ["Recorded", when(detail.finished_at)],
      ["Place", t.place ? `${t.place[2]}×${t.place[3]} px at (${t.place[0]}, ${t.place[1]})` : "–"],
    ];
    if (detail.error) facts.push(["Error", detail.error]);
    $("tile-title").textContent = `Tile ${t.index}`;
    $("tile-facts").replaceChildren(...facts.flatMap(([name, value]) => {
      const dd = Object.assign(document.createElement("dd"), {textContent: value});
      if (name === "Error") dd.className = "error";
      return [Object.assign(document.createElement("dt"), {textContent: name}), dd];
    }));
    $("tile-detail").hidden = false;
  }
  $("tile-close").onclick = () => {
    $("tile-detail").hidden = true;
    const active = view.active === null ? null : shown(view.active);
    if (active) activate(active);
  };
  $("view-stage").onchange = e => {
    view.followed = Number(e.target.value) === job.stage;
    layout(Number(e.target.value));
    summarise();
  };

  // --- the state of tiles, from snapshots and events ------------------------------------------

  // live: the change happened just now (an event), not found in a snapshot.
  function setTile(t, live) {
    const id = key(t.stage, t.index);
    const before = tiles.get(id);
    if (before?.state === "done" && t.state !== "done") return; // a late "sent" for a recorded tile
    const merged = {...before, ...t};
    tiles.set(id, merged);
    const c = stageCounts(t.stage);
    if (before) c[before.state] -= 1;
    c[merged.state] += 1;
    c.retried += (merged.attempts > 1) - (before?.attempts > 1);
    if (merged.worker) workersSeen.add(merged.worker);
    known += (merged.state === "done") - (before?.state === "done");
    if (live && merged.state !== before?.state) notePace(merged, Date.now());
    paint(merged);
  }

  function applySnapshot(snapshot) {
    const {type, tiles: rows, tile_fields, tile_states, workers, canvases: sizes, ...state} = snapshot;
    canvases.splice(0, canvases.length, ...sizes);
    const fresh = !tiles.size;
    for (const row of rows) {
      const t = Object.fromEntries(tile_fields.map((field, i) => [field, row[i]]));
      setTile({stage: t.stage, index: t.index, place: [t.left, t.top, t.width, t.height],
               state: tile_states[t.state], worker: t.worker == null ? "" : workers[t.worker],
               attempts: t.attempts, duration_ms: t.duration_ms}, false);
    }
    showStatus(state);
    recolour();
    if (fresh || view.stage === null) layout(job.stage);
    summarise();
    if (TERMINAL.includes(job.status)) drawTimeline(true); // the final snapshot: every tile is in
    asked = false;
  }

  // Tiles of a later stage mean the job moved on, even if its status event was lost.
  const reachStage = stage => { if (stage > job.stage) showStatus({stage}); };

  function tileEvent(e) {
    reachStage(e.stage);
    setTile({stage: e.stage, index: e.index, place: e.place, state: e.state, worker: e.worker,
             attempts: e.attempts, duration_ms: e.duration_ms, error: e.error}, true);
  }

  function sentEvent(e) {
    reachStage(e.stage);
    for (const [index, attempts] of e.tiles) {
      const t = tiles.get(key(e.stage, index));
      if (t) setTile({...t, state: "sent", attempts}, true);
    }
  }

  // --- the job's status, progress, timings and time left ---------------------------------

  function showStatus(state) {
    const was = job.status, stageWas = job.stage;
    job = {...job, ...state};
    if (state.timings) receivedAt = Date.now();
    $("status").textContent = job.status;
    $("status").className = `status ${job.status}`;
    $("error").textContent = job.error || "";
    $("download").hidden = job.status !== "done";
    $("cancel").hidden = TERMINAL.includes(job.status);
    $("pause").hidden = !["queued", "running"].includes(job.status);
    $("resume").hidden = job.status !== "paused";
    $("retry").hidden = !["failed", "cancelled"].includes(job.status);
    if (stageCount() > 1) {
      $("stage-label").hidden = false;
      $("stage-label").textContent = `· stage ${job.stage + 1} of ${stageCount()}`;
    }
    if (canvases.length && job.stage !== stageWas && view.followed) {
      layout(job.stage);
      announce(`Stage ${job.stage + 1} of ${stageCount()} started.`);
    }
    if (was !== job.status && TERMINAL.includes(job.status)) {
      announce(job.status === "done" ? "The job is done; the result is ready to download."
        : `The job ${job.status}${job.error ? `: ${job.error}` : "."}`);
    }
    if (job.status === "done") showResult();
    if (job.status === "done") showZoom();
    showTimings();
  }

  // The zoomable view of a big job (viewer.js), once the collector has made its pyramids: asked
  // for again every few seconds until then (the socket may have closed with the job's end).
  let zoomed = false, zoomPoll = null;
  function showZoom() {
    const section = $("zoom");
    if (!section || zoomed) return;
    section.hidden = false;
    if (job.viewer === "ready") {
      zoomed = true;
      $("zoom-wait").hidden = true;
      $("zoom-frames").hidden = false;
      const shared = new window.ImagePipeViewer.View();
      for (const which of ["original", "result"]) {
        new window.ImagePipeViewer.Viewer($(`zoom-${which}`), `${api}pyramid/${which}.dzi`, shared).open();
      }
    } else if (job.viewer === "failed") {
      $("zoom-wait").textContent = "The zoomable view could not be made; the previews above stand for it.";
    } else if (!zoomPoll) {
      zoomPoll = setInterval(async () => {
        const response = await fetch(api).catch(() => null);
        if (!response || !response.ok) return;
        const latest = await response.json();
        if (!latest.viewer) return;
        clearInterval(zoomPoll);
        job.viewer = latest.viewer;
        showZoom();
      }, 3000);
    }
  }

  const announce = text => { $("announce").textContent = text; };

  function showTimings() {
    if (!job.timings) return;
    const open = Date.now() - receivedAt;
    $("timings").textContent = Object.entries(job.timings)
      .filter(([, seconds]) => seconds !== null)
      .map(([phase, seconds]) => {
        const now = phase === job.phase ? seconds + open / 1000 : seconds;
        return `${phase} ${now.toFixed(2)} s${phase === job.phase ? " so far" : ""}`;
      }).join(" · ");
  }

  function showResult() {
    const result = `${api}preview/result/?size=1000`;
    if (!$("after").getAttribute("src")) {
      $("after").src = result;
      $("before").src = `${api}preview/original/?size=1000`;
    }
    $("compare").hidden = false;
    if (view.stage === stageCount() - 1) showResultUnder();
  }

  function showCount() {
    $("count").textContent = done;
    $("progress").value = done;
  }

  function notePace(t, now) {
    if (pace.stage !== t.stage) Object.assign(pace, {stage: t.stage, samples: [], trips: [], lastSent: 0});
    if (t.state === "sent") {
      t.sentAt = now;
      pace.lastSent = now;
    } else if (t.state === "done") {
      pace.samples.push([now, stageCounts(t.stage).done]);
      while (pace.samples.length > 2 && now - pace.samples[1][0] > PACE_MS) pace.samples.shift();
      if (t.sentAt) pace.trips = [...pace.trips.slice(-19), now - t.sentAt];
    }
  }

  const median = values => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

  // Time left in the stage under way, from what the page saw in the last seconds: tiles still
  // queued go out at the pace tiles are recorded, and each is recorded a trip's time after it was
  // sent (the median of recent trips), so the last one is in when the last queued tile has made
  // its trip, or, with none queued, when the last sent one has. A later stage's tiles cost what
  // their steps cost, unknown until they run, so they are named, not guessed.
  function timeLeft() {
    if (job.status === "queued") return ["", "waiting for a worker"];
    if (job.status === "paused") return ["", "paused"];
    if (job.status === "assembling") return ["", "assembling the result…"];
    if (TERMINAL.includes(job.status)) return ["", "–"];
    const c = stageCounts(job.stage);
    const later = stageCount() - 1 - job.stage;
    const rest = later ? ` in stage ${job.stage + 1}, then ${later === 1 ? "the last stage" : `${later} more stages`}` : "";
    if (!c.queued && !c.sent) return ["", later ? `starting stage ${job.stage + 2}…` : "assembling the result…"];
    const [first, last] = [pace.samples[0], pace.samples[pace.samples.length - 1]];
    if (pace.stage !== job.stage || pace.samples.length < 3 || last[0] - first[0] < 300) return ["", `measuring…${rest}`];
    const rate = (last[1] - first[1]) / (last[0] - first[0]); // tiles per ms
    const now = Date.now();
    let ms = (c.queued + c.sent) / rate - (now - last[0]); // without trips seen: all at the pace
    if (pace.trips.length >= 3) {
      const trip = median(pace.trips);
      ms = c.queued ? c.queued / rate + trip : pace.lastSent + trip - now;
    }
    const seconds = Math.max(ms, 0) / 1000;
    return [`${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`, rest];
  }

  function showTimeLeft() {
    const [eta, note] = timeLeft();
    $("eta").textContent = eta ? `${eta}${note}` : note;
  }

  // --- the socket -----------------------------------------------------------------------------

  function resync() {
    if (asked || !socket || socket.readyState !== WebSocket.OPEN) return;
    asked = true;
    socket.send(JSON.stringify({type: "snapshot"}));
  }

  // Bursts of events are applied once per frame, so a 2,000-tile job doesn't freeze the tab.
  function flush() {
    const events = queue;
    queue = [];
    let ended = false;
    for (const e of events) {
      if (e.type === "snapshot") applySnapshot(e);
      else if (e.type === "tile") tileEvent(e);
      else if (e.type === "sent") sentEvent(e);
      else if (e.type === "status") {
        const {type, ...state} = e;
        showStatus(state);
        ended = TERMINAL.includes(e.status);
      }
      if (e.tiles_done !== undefined) done = e.type === "snapshot" ? e.tiles_done : Math.max(done, e.tiles_done);
    }
    recolour();
    summarise();
    showCount();
    showTimeLeft();
    // A gap means events were dropped on the way; an end means the tiles' final word is wanted.
    if (done > known || ended) resync();
  }
  const enqueue = e => {
    if (!queue.length) requestAnimationFrame(flush);
    queue.push(e);
  };

  async function refreshJob() {
    const state = await (await fetch(api)).json();
    done = state.tiles_done;
    showStatus(state);
    showCount();
  }

  let delay = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/jobs/${job.id}/`);
    asked = false;
    socket.onopen = () => { delay = 500; };  // the server sends a snapshot first
    socket.onmessage = m => {
      lastMessage = Date.now();
      enqueue(JSON.parse(m.data));
    };
    socket.onclose = e => {
      // Access ended (logged out, the account deactivated, the job deleted or no longer theirs,
      // jobs/access.py): the page, asked again, says which (login, or not found).
      if (e.code === 4403 || e.code === 4404) return location.reload();
      if (TERMINAL.includes(job.status) && job.status !== "cancelled") return;
      setTimeout(connect, delay);  // the socket dropped: reconnect, and get a fresh snapshot
      delay = Math.min(delay * 2, 10000);
    };
  }

  // The job's timeline (jobs/timeline.js): redrawn every few seconds while tiles come, once at the end.
  const TIMELINE_MS = 3000;
  let timelineAt = 0;
  async function drawTimeline(force) {
    if (!known || (!force && Date.now() - timelineAt < TIMELINE_MS)) return;
    timelineAt = Date.now();
    const response = await fetch(`/api/timeline/?job=${job.id}`);
    if (response.ok) window.ImagePipeTimeline.draw($("job-timeline"), await response.json(), {throughput: false});
  }

  function tick() {
    const now = job.finished_at ? Date.parse(job.finished_at) : Date.now();
    $("elapsed").textContent = `${((now - Date.parse(job.created_at)) / 1000).toFixed(1)} s`;
    showTimeLeft();
    showTimings();
    if (!TERMINAL.includes(job.status)) drawTimeline(false);
    if (!TERMINAL.includes(job.status) && Date.now() - lastMessage > QUIET_MS) {
      lastMessage = Date.now();
      resync();
    }
  }

  async function act(method, path, body) {
    const headers = {"X-CSRFToken": csrf, ...(body ? {"Content-Type": "application/json"} : {})};
    const response = await fetch(`${api}${path}`, {method, headers, body: body && JSON.stringify(body)});
    if (!response.ok && response.status !== 204) {
      $("error").textContent = (await response.json()).error;
      return null;
    }
    return response;
  }
  $("cancel").onclick = async () => { if (await act("POST", "cancel/")) refreshJob(); };
  $("pause").onclick = async () => { if (await act("POST", "pause/")) refreshJob(); };
  $("resume").onclick = async () => { if (await act("POST", "resume/")) refreshJob(); };
  $("retry").onclick = async () => {
    if (await act("POST", "retry/")) {
      pace.stage = null; // the retried run's pace is measured afresh
      await refreshJob();
      if (socket.readyState === WebSocket.CLOSED) connect();
      else resync();
    }
  };
  $("keep").onchange = async () => {
    const wanted = $("keep").checked;
    if (!await act("POST", "keep/", {keep: wanted})) $("keep").checked = !wanted;  // refused: as it was
  };
  $("delete").onclick = async () => {
    if (confirm("Delete this job and its files?") && await act("DELETE", "")) location.href = "/";
  };
  // The previews are made by the pipeline with the job; one that is missing says so.
  for (const id of ["before", "after"]) $(id).addEventListener("error", () => { $("compare-missing").hidden = false; });
  const slider = $("slider");
  if (slider) {
    slider.oninput = () => {
      $("compare-frame").style.setProperty("--split", slider.value / 100);
      slider.setAttribute("aria-valuetext", `${slider.value}% original`);
    };
    // The clipped original is drawn at the result's size, whatever share of it shows.
    const fit = () => { $("before").style.width = `${$("after").clientWidth}px`; };
    $("after").onload = fit;
    window.addEventListener("resize", fit);
  }
  window.addEventListener("resize", () => {
    if (view.stage !== null && fittingScale(view.stage) !== view.scale) layout(view.stage);
  });

  showStatus(job);
  connect();
  tick();
  setInterval(tick, 1000);
})();
