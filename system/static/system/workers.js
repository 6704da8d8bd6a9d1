// The workers page, live: every 2 s the workers (GET /api/workers/, in the order of their ids, with
// tiles per second as the server counts them over recorded tiles) and the last five minutes of the
// system's timeline (GET /api/timeline/), drawn by jobs/timeline.js.
(() => {
  const body = document.querySelector("#workers tbody");
  const counters = [...document.querySelectorAll("#workers th[data-counter]")].map(th => th.dataset.counter);
  const timeline = document.getElementById("timeline");
  const cell = text => Object.assign(document.createElement("td"), {textContent: text});

  function ago(seconds) {
    if (seconds < 60) return `${Math.max(0, Math.round(seconds))} s ago`;
    if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
    return `${Math.round(seconds / 86400)} days ago`;
  }

  function lastSeen(worker) {
    const td = cell("");
    const seen = new Date(worker.last_seen);
    td.append(Object.assign(document.createElement("time"), {
      dateTime: worker.last_seen, title: seen.toLocaleString(), textContent: ago(worker.seconds_since_seen),
    }));
    return td;
  }

  function row(worker) {
    const tr = document.createElement("tr");
    tr.dataset.worker = worker.id;
    const status = cell(worker.status);
    status.className = `status ${worker.status}`;
    const rate = cell(worker.tiles_per_second.toFixed(1));
    rate.className = "rate";
    const current = cell("");
    if (worker.current_job) {
      current.append(Object.assign(document.createElement("a"), {href: `/jobs/${worker.current_job}/`,
                                                                 textContent: worker.current_job.slice(0, 8)}));
    }
    tr.append(cell(worker.id), cell(worker.host), status, lastSeen(worker), cell(worker.tiles_done), rate,
              ...counters.map(name => cell(worker.counters[name] || 0)), cell(worker.partitions.join(", ")), current);
    return tr;
  }

  async function refresh() {
    const [workers, stream] = await Promise.all(
      ["/api/workers/", "/api/timeline/?seconds=300"].map(async url => (await fetch(url)).json()));
    if (workers.results.length) body.replaceChildren(...workers.results.map(row));
    window.ImagePipeTimeline.draw(timeline, stream);
  }
  refresh();
  setInterval(refresh, 2000);
})();
