// The history's first page, live: every 2 s it asks GET /api/jobs/ with the page's own filters
// (the API takes the same ones and pages by the same size) and makes the rows match the answer:
// status, tiles, duration and thumbnail of the rows there, new jobs inserted at the top, rows
// that left the page's filters taken out. Later pages stay as the server rendered them. A thumbnail
// is the preview the pipeline made (job.thumbnail), or a placeholder until there is one.
(() => {
  const table = document.getElementById("history");
  // A preview the pipeline has not made (or could not) answers 404: its row shows the placeholder,
  // marked with the preview it stands for, so it is asked for again only when that changes.
  const placeholder = which => {
    const span = Object.assign(document.createElement("span"), {className: "no-preview", textContent: "no preview yet"});
    span.dataset.which = which;
    return span;
  };
  const missing = img => img.replaceWith(placeholder(img.dataset.which));
  table.addEventListener("error", event => { if (event.target.matches("td.thumb img")) missing(event.target); }, true);
  table.querySelectorAll("td.thumb img").forEach(img => { if (img.complete && !img.naturalWidth) missing(img); });
  if (table.dataset.page !== "1") return;
  const body = table.tBodies[0];
  const staff = table.dataset.staff === "true";
  const url = `/api/jobs/?${table.dataset.query}`;
  const none = body.querySelector("tr.empty") || Object.assign(document.createElement("tr"), {className: "empty"});
  if (!none.cells.length) {  // the server listed jobs; should none be left, say so as it would
    none.append(Object.assign(document.createElement("td"), {
      colSpan: table.tHead.rows[0].cells.length, textContent: "No jobs match these filters.",
    }));
  }
  const cell = (text, className = "") => Object.assign(document.createElement("td"), {textContent: text, className});
  const link = (job, child) => {
    const a = Object.assign(document.createElement("a"), {href: `/jobs/${job.id}/`});
    a.append(child);
    return a;
  };
  const utc = iso => new Date(iso).toISOString().slice(0, 19).replace("T", " ");  // as the server renders

  function thumbnail(job) {
    const which = job.thumbnail;  // the result's once done, the original's once started, else none yet
    if (!which) return placeholder("");
    const img = Object.assign(document.createElement("img"), {
      loading: "lazy", alt: `${which} of ${job.original_name}`, src: `/api/jobs/${job.id}/preview/${which}/`,
    });
    img.dataset.which = which;
    return img;
  }

  function newRow(job) {
    const tr = document.createElement("tr");
    tr.dataset.job = job.id;
    tr.dataset.status = job.status;
    const thumb = cell("", "thumb");
    thumb.append(link(job, thumbnail(job)));
    const name = cell("");
    name.append(link(job, job.original_name));
    const created = cell("");
    created.append(Object.assign(document.createElement("time"), {dateTime: job.created_at, textContent: utc(job.created_at)}));
    tr.append(thumb, name, ...(staff ? [cell(job.owner)] : []), cell(`${job.width}×${job.height}`),
              cell(job.operations.map(step => step.op).join(" → ")), cell("", "tiles"), cell("", "duration"),
              cell("", "status"), created);
    return tr;
  }

  function update(tr, job) {
    tr.querySelector(".tiles").textContent = `${job.tiles_done}/${job.tiles_total}`;
    tr.querySelector(".duration").textContent = job.duration === null ? "" : `${job.duration.toFixed(1)} s`;
    const status = tr.querySelector(".status");
    status.textContent = job.status;
    status.className = `status ${job.status}`;
    const shown = tr.querySelector(".thumb a").firstElementChild;
    if (shown.dataset.which !== (job.thumbnail || "")) shown.replaceWith(thumbnail(job));  // made since
    tr.dataset.status = job.status;
  }

  async function refresh() {
    const response = await fetch(url, {headers: {Accept: "application/json"}});
    if (!response.ok) return;
    const rows = new Map([...body.querySelectorAll("tr[data-job]")].map(tr => [tr.dataset.job, tr]));
    const jobs = (await response.json()).results;
    body.replaceChildren(...(jobs.length ? jobs.map(job => {
      const tr = rows.get(job.id) || newRow(job);
      update(tr, job);
      return tr;
    }) : [none]));
  }
  setInterval(refresh, 2000);
})();
