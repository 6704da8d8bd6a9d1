// The job page: a live mosaic over the websocket /ws/jobs/{id}/. The socket opens with a
// snapshot of the job and every finished tile, then relays live events; the page asks for a
// fresh snapshot when it sees a gap (tiles_done ahead of the tiles it knows), when the job
// ends, and after a long silence, so it always ends with the true state.
(() => {
  const $ = id => document.getElementById(id);
  let job = JSON.parse($("job-data").textContent);
  const api = `/api/jobs/${job.id}/`;
  const csrf = (document.cookie.match(/csrftoken=([^;]+)/) || [])[1];
  const mosaic = $("mosaic");
  const TERMINAL = ["done", "failed", "cancelled"];
  const PREVIEW_LIMIT = 1000; // beyond this many tiles the mosaic shows outlines, not pixels
  const QUIET_MS = 20000; // no message for this long on an unfinished job: the final one may be lost
  const colours = new Map();
  const colour = worker => {
    if (!colours.has(worker)) colours.set(worker, `hsl(${(colours.size * 137) % 360} 70% 45%)`);
    return colours.get(worker);
  };
  const view = {stage: null, scale: 1, tiles: new Map()};
  const known = new Set(); // "stage:index" of every finished tile the page has, all stages
  let queue = [];
  let done = job.tiles_done;
  let socket = null;
  let asked = false; // a snapshot request is on its way
  let lastMessage = Date.now();

  function layout(stage, canvas) {
    view.stage = stage;
    view.tiles.clear();
    mosaic.replaceChildren();
    view.scale = Math.min(1, Math.min(1000, mosaic.parentElement.clientWidth) / canvas[0]);
    mosaic.style.width = `${canvas[0] * view.scale}px`;
    mosaic.style.height = `${canvas[1] * view.scale}px`;
    mosaic.dataset.stage = stage;
  }

  function drawTile(t) {
    if (view.stage === null || t.stage > view.stage) layout(t.stage, t.canvas);
    if (t.stage < view.stage) return;
    let cell = view.tiles.get(t.index);
    if (!cell) {
      cell = document.createElement("div");
      cell.className = "tile";
      mosaic.append(cell);
      view.tiles.set(t.index, cell);
    }
    const [x, y, w, h] = t.place.map(v => v * view.scale);
    Object.assign(cell.style, {left: `${x}px`, top: `${y}px`, width: `${w}px`, height: `${h}px`});
    cell.classList.add("done");
    cell.style.setProperty("--worker", colour(t.worker));
    cell.dataset.worker = t.worker;
    const where = t.partition === undefined ? "" : ` · partition ${t.partition}, offset ${t.offset}`;
    cell.title = `tile ${t.index}${t.stage ? ` (stage ${t.stage})` : ""} · ${t.worker} · ` +
      `attempts ${t.attempts} · ${t.duration_ms} ms${where}`;
    if (job.status !== "done" && job.tiles_total <= PREVIEW_LIMIT) {
      cell.style.backgroundImage = `url(${api}tiles/${t.stage}/${t.index}/preview/)`;
    }
  }

  function showStatus(state) {
    job = {...job, ...state};
    $("status").textContent = job.status;
    $("status").className = `status ${job.status}`;
    $("error").textContent = job.error || "";
    $("download").hidden = job.status !== "done";
    $("cancel").hidden = TERMINAL.includes(job.status);
    $("pause").hidden = !["queued", "running"].includes(job.status);
    $("resume").hidden = job.status !== "paused";
    $("retry").hidden = !["failed", "cancelled"].includes(job.status);
    if (job.timings) {
      $("timings").textContent = Object.entries(job.timings)
        .filter(([, seconds]) => seconds !== null)
        .map(([phase, seconds]) => `${phase} ${seconds.toFixed(2)} s`).join(" · ");
    }
    if (job.status === "done") showResult();
  }

  function showResult() {
    if (!$("after").src) $("after").src = `${api}preview/result/?size=1000`;
    $("compare").hidden = false;
    mosaic.style.backgroundImage = `url(${api}preview/result/?size=1000)`;
    mosaic.style.backgroundSize = "100% 100%";
    view.tiles.forEach(cell => { cell.style.backgroundImage = "none"; });
  }

  function showCount() {
    $("count").textContent = done;
    $("progress").value = done;
  }

  function addTile(t) {
    known.add(`${t.stage}:${t.index}`);
    drawTile(t);
  }

  // A snapshot's tiles are rows of tile_fields; only the latest stage's are drawn.
  function applySnapshot(snapshot) {
    const {type, tiles, tile_fields, workers, canvases, ...state} = snapshot;
    showStatus(state);
    const rows = tiles.map(row => Object.fromEntries(tile_fields.map((field, i) => [field, row[i]])));
    const stage = rows.reduce((latest, t) => Math.max(latest, t.stage), view.stage ?? 0);
    for (const t of rows) {
      known.add(`${t.stage}:${t.index}`);
      if (t.stage !== stage) continue;
      drawTile({...t, place: [t.left, t.top, t.width, t.height], canvas: canvases[t.stage],
        worker: workers[t.worker]});
    }
    asked = false;
  }

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
      else if (e.type === "tile") addTile(e);
      else if (e.type === "status") {
        const {type, ...state} = e;
        showStatus(state);
        ended = TERMINAL.includes(e.status);
      }
      done = Math.max(done, e.tiles_done);
    }
    showCount();
    // A gap means events were dropped on the way; an end means the timings are final.
    if (done > known.size || ended) resync();
  }
  const enqueue = e => {
    if (!queue.length) requestAnimationFrame(flush);
    queue.push(e);
  };

  async function refreshJob() {
    const state = await (await fetch(api)).json();
    done = Math.max(done, state.tiles_done);
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
    socket.onclose = () => {
      if (TERMINAL.includes(job.status) && job.status !== "cancelled") return;
      setTimeout(connect, delay);  // the socket dropped: reconnect, and get a fresh snapshot
      delay = Math.min(delay * 2, 10000);
    };
  }

  function tick() {
    const now = job.finished_at ? Date.parse(job.finished_at) : Date.now();
    $("elapsed").textContent = `${((now - Date.parse(job.created_at)) / 1000).toFixed(1)} s`;
    if (job.started_at && !TERMINAL.includes(job.status) && done > 0) {
      const rate = done / ((Date.now() - Date.parse(job.started_at)) / 1000);
      $("eta").textContent = `${((job.tiles_total - done) / rate).toFixed(1)} s`;
    } else {
      $("eta").textContent = TERMINAL.includes(job.status) ? "–" : "…";
    }
    if (!TERMINAL.includes(job.status) && Date.now() - lastMessage > QUIET_MS) {
      lastMessage = Date.now();
      resync();
    }
  }

  async function act(method, path) {
    const response = await fetch(`${api}${path}`, {method, headers: {"X-CSRFToken": csrf}});
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
      refreshJob();
      if (socket.readyState === WebSocket.CLOSED) connect();
    }
  };
  $("delete").onclick = async () => {
    if (confirm("Delete this job and its files?") && await act("DELETE", "")) location.href = "/";
  };
  $("slider").oninput = e => { $("after-clip").style.width = `${e.target.value}%`; };
  $("after").onload = () => { $("after").style.width = `${$("before").clientWidth}px`; };

  showStatus(job);
  connect();
  tick();
  setInterval(tick, 1000);
})();
