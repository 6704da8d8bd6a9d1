// The submit page: drag and drop, a chain builder from /api/operations/, the tile grid
// preview, and an upload with a progress bar through POST /api/jobs/.
(() => {
  const $ = id => document.getElementById(id);
  const form = $("submit-form");
  const fileInput = $("id_image");
  const chain = $("chain");
  let catalogue = {};
  let image = null;  // the chosen file, decoded for the grid preview

  const paramInput = (param, value) => {
    const label = document.createElement("label");
    const input = document.createElement(param.choices ? "select" : "input");
    if (param.choices) {
      for (const choice of param.choices) input.add(new Option(choice, choice));
    } else {
      Object.assign(input, {type: "number", min: param.min, max: param.max,
                            step: param.type === "int" ? (param.odd ? 2 : 1) : "any"});
    }
    input.name = param.name;
    input.value = value ?? param.default;
    label.append(`${param.name} `, input);
    return label;
  };

  function addStep(op, values = {}) {
    const entry = catalogue[op];
    const item = document.createElement("li");
    item.dataset.op = op;
    const remove = Object.assign(document.createElement("button"), {type: "button", textContent: "✕",
                                                                      title: "remove"});
    remove.onclick = () => { item.remove(); drawGrid(); };
    item.append(Object.assign(document.createElement("strong"), {textContent: op, title: entry.description}));
    for (const param of entry.params) item.append(paramInput(param, values[param.name]));
    item.append(" ", remove);
    chain.append(item);
  }

  const steps = () => [...chain.children].map(item => {
    const step = {op: item.dataset.op};
    for (const input of item.querySelectorAll("input, select")) step[input.name] = Number(input.value);
    return step;
  });

  async function loadCatalogue() {
    const entries = await (await fetch("/api/operations/")).json();
    for (const entry of entries) {
      catalogue[entry.op] = entry;
      $("add-op").add(new Option(`${entry.op} (${entry.kind})`, entry.op));
    }
    let initial = [];
    try { initial = JSON.parse($("id_operations").value || "[]"); } catch { initial = []; }
    for (const step of initial) if (catalogue[step.op]) addStep(step.op, step);
  }
  $("add-op").onchange = e => { if (e.target.value) addStep(e.target.value); e.target.value = ""; };

  function drawGrid() {
    if (!image) return;
    const size = Number($("id_tile_size").value) || 512;
    const cols = Math.ceil(image.width / size), rows = Math.ceil(image.height / size);
    const canvas = $("grid");
    const scale = Math.min(1, 800 / image.width);
    canvas.width = Math.round(image.width * scale);
    canvas.height = Math.round(image.height * scale);
    const context = canvas.getContext("2d");
    context.drawImage(image, 0, 0, canvas.width, canvas.height);
    context.strokeStyle = "rgba(255, 40, 40, .85)";
    context.lineWidth = 1;
    for (let x = size; x < image.width; x += size) context.strokeRect(x * scale, 0, 0, canvas.height);
    for (let y = size; y < image.height; y += size) context.strokeRect(0, y * scale, canvas.width, 0);
    canvas.hidden = false;
    $("grid-info").textContent = `${image.width} × ${image.height} px → ${cols} × ${rows} = ${cols * rows} tiles of ${size} px`;
  }

  function choose(file) {
    $("drop-text").textContent = file.name;
    const picture = new Image();
    picture.onload = () => { image = picture; drawGrid(); };
    picture.onerror = () => { image = null; $("grid").hidden = true;
                              $("grid-info").textContent = "(no preview for this file type)"; };
    picture.src = URL.createObjectURL(file);
  }
  fileInput.onchange = () => fileInput.files[0] && choose(fileInput.files[0]);
  $("id_tile_size").oninput = drawGrid;
  const drop = $("drop");
  drop.ondragover = e => { e.preventDefault(); drop.classList.add("over"); };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = e => {
    e.preventDefault();
    drop.classList.remove("over");
    if (!e.dataTransfer.files.length) return;
    fileInput.files = e.dataTransfer.files;
    choose(fileInput.files[0]);
  };

  form.onsubmit = e => {
    e.preventDefault();
    $("id_operations").value = JSON.stringify(steps());
    const data = new FormData(form);
    const request = new XMLHttpRequest();
    request.open("POST", "/api/jobs/");
    request.setRequestHeader("X-CSRFToken", data.get("csrfmiddlewaretoken"));
    const bar = $("upload-progress");
    bar.hidden = false;
    request.upload.onprogress = p => { if (p.lengthComputable) bar.value = p.loaded / p.total; };
    request.onload = () => {
      const body = JSON.parse(request.responseText || "{}");
      if (request.status === 201) { location.href = `/jobs/${body.id}/`; return; }
      bar.hidden = true;
      $("form-error").textContent = body.error || body.detail || `upload failed (${request.status})`;
    };
    request.onerror = () => { bar.hidden = true; $("form-error").textContent = "upload failed: network error"; };
    request.send(data);
  };
  loadCatalogue();
})();
