// The submit page: drag and drop, a chain builder from /api/operations/ (each step with its
// parameters, their ranges and the operation's help, moved up and down with buttons), the tile
// grid preview, the form checked before anything is sent, and an upload with a progress bar
// through POST /api/jobs/ (a file larger than one piece as a resumable upload, /api/uploads/).
(() => {
  const $ = id => document.getElementById(id);
  const element = (tag, properties = {}) => Object.assign(document.createElement(tag), properties);
  const form = $("submit-form");
  const fileInput = $("id_image");
  const chain = $("chain");
  const tileSize = $("id_tile_size");
  const start = $("start");
  const catalogue = {};
  let image = null;  // the chosen file, decoded for the grid preview
  let fields = 0;  // numbers the parameter inputs' ids

  // --- Checking a field: the browser's own constraint validation, told in words.

  function problem(input) {
    const validity = input.validity;
    if (validity.badInput) return "must be a number";
    if (validity.valueMissing) return "is empty";
    if (validity.rangeUnderflow || validity.rangeOverflow) return `must be between ${input.min} and ${input.max}`;
    if (validity.stepMismatch) return input.step === "2" ? "must be odd" : "must be a whole number";
    if (validity.patternMismatch) return "must be a colour like #1a2b3c";
    return "";
  }

  function check(input) {
    const why = problem(input);
    if (why) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    return why;
  }

  // --- The chain: one list item per step.

  function paramField(param, value) {
    const id = `param-${++fields}`;
    const input = element(param.choices ? "select" : "input", {id, name: param.name, required: true});
    input.dataset.type = param.type;
    if (param.choices) {
      for (const choice of param.choices) input.add(new Option(choice, choice));
    } else if (param.type === "str") {  // text of a form: a colour
      Object.assign(input, {type: "text", pattern: param.pattern, size: 9, spellcheck: false});
    } else {
      Object.assign(input, {type: "number", inputMode: param.type === "int" ? "numeric" : "decimal",
                            min: param.min, max: param.max,
                            step: param.type === "int" ? (param.odd ? 2 : 1) : "any"});
    }
    input.value = value ?? param.default;
    input.addEventListener("input", () => check(input));
    const field = element("span", {className: "param"});
    field.append(element("label", {htmlFor: id, textContent: param.name}), input);
    if (!param.choices) {
      const text = param.type === "str" ? "#rrggbb" : `${param.min}–${param.max}${param.odd ? ", odd" : ""}`;
      const range = element("span", {id: `${id}-range`, className: "range", textContent: text});
      input.setAttribute("aria-describedby", range.id);
      field.append(range);
    }
    return field;
  }

  function stepButton(className, text, label, action) {
    const button = element("button", {type: "button", className, textContent: text, title: label});
    button.setAttribute("aria-label", label);
    button.onclick = action;
    return button;
  }

  function addStep(op, values = {}) {
    const entry = catalogue[op];
    const item = element("li");
    item.dataset.op = op;
    const group = element("fieldset");
    const help = element("p", {className: "help", id: `help-${++fields}`, textContent: entry.description});
    group.setAttribute("aria-describedby", help.id);
    const params = element("div", {className: "params"});
    for (const param of entry.params) params.append(paramField(param, values[param.name]));
    const buttons = element("div", {className: "step-buttons"});
    buttons.append(
      stepButton("up", "↑", `Move ${op} up`, e => move(item, -1, e.currentTarget)),
      stepButton("down", "↓", `Move ${op} down`, e => move(item, 1, e.currentTarget)),
      stepButton("remove", "✕", `Remove ${op}`, () => remove(item)),
    );
    group.append(element("legend", {textContent: op}), help, params, buttons);
    item.append(group);
    chain.append(item);
    updateMoveButtons();
  }

  function updateMoveButtons() {
    const items = [...chain.children];
    items.forEach((item, index) => {
      item.querySelector(".up").disabled = index === 0;
      item.querySelector(".down").disabled = index === items.length - 1;
    });
  }

  function move(item, offset, button) {
    // The neighbour moves, not the item: the focused button stays where the keyboard left it.
    if (offset < 0) item.after(item.previousElementSibling); else item.before(item.nextElementSibling);
    updateMoveButtons();
    if (button.disabled) item.querySelector(offset < 0 ? ".down" : ".up").focus();
    const position = [...chain.children].indexOf(item) + 1;
    $("chain-status").textContent = `${item.dataset.op} is now step ${position} of ${chain.children.length}`;
  }

  function remove(item) {
    const next = item.nextElementSibling || item.previousElementSibling;
    item.remove();
    updateMoveButtons();
    (next ? next.querySelector(".remove") : $("add-op")).focus();
    $("chain-status").textContent = `${item.dataset.op} removed`;
  }

  const steps = () => [...chain.children].map(item => {
    const step = {op: item.dataset.op};
    for (const input of item.querySelectorAll("input, select")) step[input.name] = input.dataset.type === "str" ? input.value : Number(input.value);
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
  $("add-step").onclick = () => addStep($("add-op").value);

  // --- The tile grid preview.

  function drawGrid() {
    const canvas = $("grid");
    const why = check(tileSize);
    if (why) {
      canvas.hidden = true;
      $("grid-info").textContent = `Tile size ${why} px.`;
      return;
    }
    if (!image) return;
    const size = Number(tileSize.value);
    const cols = Math.ceil(image.width / size), rows = Math.ceil(image.height / size);
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
    describePlan();
  }

  // What the chain makes of the image, as the server works it out (POST /api/plan/): the
  // result's size, and the tiles of every stage; or why it would be refused.
  let planned = null;
  function describePlan() {
    clearTimeout(planned);
    planned = setTimeout(async () => {
      if (!image || !chain.children.length || check(tileSize)) { $("plan-info").textContent = ""; return; }
      const body = {operations: steps(), width: image.width, height: image.height, tile_size: Number(tileSize.value)};
      let answer;
      try {
        const response = await fetch("/api/plan/", {method: "POST", body: JSON.stringify(body),
          headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()}});
        answer = {ok: response.ok, body: await response.json()};
      } catch { return; }  // the page says nothing rather than something stale
      const plan = answer.body;
      $("plan-info").textContent = !answer.ok ? `This chain would be refused: ${plan.error}` :
        `Result: ${plan.result.width} × ${plan.result.height} px (${plan.result.mode}), ` +
        `${plan.stages.length} stage${plan.stages.length > 1 ? "s" : ""}, ${plan.tiles_total} tiles in all.`;
    }, 250);
  }
  new MutationObserver(describePlan).observe(chain, {childList: true});
  chain.addEventListener("input", describePlan);
  chain.addEventListener("change", describePlan);

  function choose(file) {
    $("drop-text").textContent = file.name;
    const picture = new Image();
    picture.onload = () => { image = picture; drawGrid(); };
    picture.onerror = () => { image = null; $("grid").hidden = true;
                              $("grid-info").textContent = "(no preview for this file type)"; };
    picture.src = URL.createObjectURL(file);
  }
  fileInput.onchange = () => fileInput.files[0] && choose(fileInput.files[0]);
  tileSize.oninput = drawGrid;
  $("id_quality").oninput = e => check(e.target);
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

  // --- Sending: every problem named at once, nothing uploaded until there are none.

  function problems() {
    const found = [];
    [...chain.children].forEach((item, index) => {
      for (const input of item.querySelectorAll("input")) {
        const why = check(input);
        if (why) found.push([input, `Step ${index + 1} (${item.dataset.op}): ${input.name} ${why}.`]);
      }
    });
    if (!chain.children.length) found.push([$("add-op"), "Add at least one operation."]);
    for (const [input, name] of [[tileSize, "Tile size"], [$("id_quality"), "Quality"]]) {
      const why = check(input);
      if (why) found.push([input, `${name} ${why}.`]);
    }
    if (!fileInput.files.length) found.push([fileInput, "Choose an image."]);
    return found;
  }

  function showErrors(messages) {
    $("form-error").replaceChildren(...messages.map(text => element("p", {textContent: text})));
  }

  form.onsubmit = e => {
    e.preventDefault();
    if (start.disabled) return;  // an upload is under way
    const found = problems();
    showErrors(found.map(([, message]) => message));
    if (found.length) {
      found[0][0].focus();
      return;
    }
    $("id_operations").value = JSON.stringify(steps());
    upload(new FormData(form));
  };

  // A file that fits in one piece goes with the form in one request; a larger one first goes to
  // /api/uploads/ a piece at a time (a resumable upload), then the form names the upload.
  const chunkBytes = Number(form.dataset.chunkBytes);
  const bar = $("upload-progress");
  const status = $("upload-status");

  function upload(data) {
    start.disabled = true;
    bar.hidden = false;
    bar.value = 0;
    const file = data.get("image");
    if (file.size <= chunkBytes) { submitJob(data); return; }
    sendInPieces(file).then(id => {
      data.delete("image");
      data.set("upload", id);
      submitJob(data, () => localStorage.removeItem(uploadKey(file)));
    }, failed);
  }

  function failed(message) {
    start.disabled = false;
    bar.hidden = true;
    status.textContent = "";
    showErrors([message]);
  }

  function csrf() { return form.elements.csrfmiddlewaretoken.value; }

  function submitJob(data, done = () => {}) {
    const request = new XMLHttpRequest();
    request.open("POST", "/api/jobs/");
    request.setRequestHeader("X-CSRFToken", csrf());
    request.upload.onprogress = p => { if (p.lengthComputable && data.has("image")) bar.value = p.loaded / p.total; };
    request.onload = () => {
      const body = parsed(request.responseText);
      if (request.status === 201) { done(); location.href = `/jobs/${body.id}/`; return; }
      failed(body.error || body.detail || `upload failed (${request.status})`);
    };
    request.onerror = () => failed("upload failed: network error");
    request.send(data);
  }

  function parsed(text) {
    try { return JSON.parse(text || "{}"); } catch { return {}; }
  }

  // --- A resumable upload. Its id is kept in localStorage under the file's name, size and date,
  // so choosing the same file again after a reload, or after the retries gave up, goes on from
  // where the upload reached.

  const uploadKey = file => `imagepipe-upload:${file.name}:${file.size}:${file.lastModified}`;
  const RETRIES = 8;  // a piece's tries after its first, 1 s apart and doubling up to 30 s

  function call(method, url, body, headers = {}) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open(method, url);
      request.setRequestHeader("X-CSRFToken", csrf());
      for (const [name, value] of Object.entries(headers)) request.setRequestHeader(name, value);
      if (headers["Upload-Offset"] !== undefined) {
        const offset = Number(headers["Upload-Offset"]);
        request.upload.onprogress = p => { bar.value = (offset + p.loaded) / bar.dataset.size; };
      }
      request.onload = () => resolve({status: request.status, body: parsed(request.responseText)});
      request.onerror = () => reject(new Error("network"));
      request.send(body);
    });
  }

  async function existing(file) {
    const id = localStorage.getItem(uploadKey(file));
    if (!id) return null;
    const answer = await call("GET", `/api/uploads/${id}/`).catch(() => null);
    if (answer && answer.status === 200 && answer.body.size === file.size) return answer.body;
    localStorage.removeItem(uploadKey(file));  // expired, deleted, or never finished beginning
    return null;
  }

  async function begin(file) {
    const fields = new FormData();
    fields.set("filename", file.name);
    fields.set("size", file.size);
    const answer = await call("POST", "/api/uploads/", fields);
    if (answer.status !== 201) throw answer.body.error || `upload refused (${answer.status})`;
    localStorage.setItem(uploadKey(file), answer.body.id);
    return answer.body;
  }

  async function sendInPieces(file) {
    bar.dataset.size = file.size;
    let upload;
    try {
      upload = await existing(file) || await begin(file);
    } catch (error) {
      throw typeof error === "string" ? error : "upload failed: network error";
    }
    let offset = upload.offset, tries = 0;
    while (offset < file.size) {
      bar.value = offset / file.size;
      const piece = file.slice(offset, offset + upload.chunk_bytes);
      let answer = null;
      try {
        answer = await call("PATCH", `/api/uploads/${upload.id}/`, piece,
                            {"Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream"});
      } catch { answer = null; }
      if (answer && answer.status === 200) {
        offset = answer.body.offset;
        tries = 0;
        status.textContent = "";
      } else if (answer && answer.status === 409) {
        offset = answer.body.offset;  // the server has more (or less) than we thought: go on from there
      } else if (answer && answer.status < 500) {
        throw answer.body.error || answer.body.detail || `upload refused (${answer.status})`;
      } else {
        if (++tries > RETRIES) throw "the connection was lost; choose Start again to go on from where it stopped";
        const wait = Math.min(30, 2 ** (tries - 1));
        status.textContent = `Connection lost at ${Math.round(100 * offset / file.size)} %; trying again in ${wait} s…`;
        await new Promise(resume => setTimeout(resume, wait * 1000));
        const state = await call("GET", `/api/uploads/${upload.id}/`).catch(() => null);
        if (state && state.status === 200) offset = state.body.offset;
      }
    }
    bar.value = 1;
    status.textContent = "Uploaded; starting the job…";
    return upload.id;
  }

  drawGrid();
  loadCatalogue();
})();
