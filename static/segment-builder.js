// Segment builder: edits the rule tree held in #id_rules and asks the server for a live count;
// also mounted on every textarea[data-rules-builder] (a journey's conditions), without a count.
(function () {
  "use strict";
  const catalogueNode = document.getElementById("segment-catalogue");
  if (!catalogueNode) return;
  const catalogue = JSON.parse(catalogueNode.textContent);
  const units = JSON.parse(document.getElementById("segment-units").textContent);
  const labels = JSON.parse(document.getElementById("segment-labels").textContent);
  const single = document.getElementById("id_rules");
  const builder = document.getElementById("builder");
  if (single && builder) mount(single, builder, document.getElementById("live-count"));
  mountAll(document);
  // A step redrawn by htmx (its kind changed to a condition) brings a new rules field.
  document.body.addEventListener("htmx:load", (event) => mountAll(event.target));

  function mountAll(scope) {
  scope.querySelectorAll("textarea[data-rules-builder]:not([data-mounted])").forEach((input) => {
    input.setAttribute("data-mounted", "");
    const root = document.createElement("div");
    root.setAttribute("role", "group");
    const label = document.querySelector(`label[for="${input.id}"]`);
    if (label) root.setAttribute("aria-label", label.textContent.trim());
    input.after(root);
    input.hidden = true;
    mount(input, root, null);
  });
  }

  function mount(input, root, countTarget) {
  let tree;
  try { tree = JSON.parse(input.value); } catch (e) { tree = null; }
  if (!tree || !tree.match) tree = { match: "all", rules: [] };
  const noValue = new Set(["is_empty", "is_not_empty", "is_valid", "is_not_valid", "is_true", "is_false"]);
  const byField = Object.fromEntries(catalogue.map((f) => [f.field, f]));

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.appendChild(c));
    return node;
  }
  function select(options, value, label, onChange) {
    const s = el("select", { class: "form-select form-select-sm d-inline-block w-auto me-1", "aria-label": label });
    options.forEach(([v, text]) => {
      const o = el("option", { value: v, text: text });
      if (v === value) o.selected = true;
      s.appendChild(o);
    });
    s.addEventListener("change", () => onChange(s.value));
    return s;
  }
  function renderCondition(rule, parent, index) {
    const row = el("div", { class: "mb-2 condition" });
    // Labels come from the server, translated; the rule keeps the keys.
    row.appendChild(select(catalogue.map((f) => [f.field, f.label]), rule.field, labels.field, (v) => {
      rule.field = v; rule.op = byField[v].ops[0][0]; rule.value = ""; delete rule.days; changed();
    }));
    const spec = byField[rule.field] || catalogue[0];
    row.appendChild(select(spec.ops, rule.op, labels.operator, (v) => { rule.op = v; changed(); }));
    if (!noValue.has(rule.op)) {
      let valueInput;
      const pick = (options) => select([["", "—"], ...options], String(rule.value == null ? "" : rule.value), labels.value, (v) => { rule.value = v; changed(); });
      const [input, withDays] = ((spec.inputs || {})[rule.op] || "").split("+");
      if (rule.field === "unit") {
        valueInput = pick(units);
      } else if (input === "choice") {
        valueInput = pick(spec.choices || []);
      } else if (rule.op === "month_is") {
        valueInput = pick(labels.months);
      } else if (spec.choices && spec.choices.length && ["equals", "not_equals"].includes(rule.op)) {
        valueInput = pick(spec.choices);
      } else {
        const type = input === "date" || (/birthday|created_at/.test(rule.field) && ["before", "after", "on"].includes(rule.op)) ? "date"
          : rule.op === "in_last_days" || input === "number" ? "number" : "text";
        valueInput = el("input", { class: "form-control form-control-sm d-inline-block w-auto me-1", type: type, "aria-label": labels.value });
        valueInput.value = rule.value == null ? "" : rule.value;
        valueInput.addEventListener("input", () => { rule.value = valueInput.value; sync(); });
      }
      row.appendChild(valueInput);
      if (withDays) {
        // "… in the last N days": the rule keeps the days beside the value.
        const days = el("input", { class: "form-control form-control-sm d-inline-block w-auto me-1", type: "number", min: "1", "aria-label": labels.days });
        days.value = rule.days == null ? "" : rule.days;
        days.addEventListener("input", () => { rule.days = days.value; sync(); });
        row.appendChild(el("span", { class: "me-1", text: labels.inTheLast }));
        row.appendChild(days);
        row.appendChild(el("span", { class: "me-1", text: labels.daysUnit }));
      }
    }
    const remove = el("button", { type: "button", class: "btn btn-sm btn-link text-danger", text: labels.remove });
    remove.addEventListener("click", () => { parent.rules.splice(index, 1); changed(); });
    row.appendChild(remove);
    // What the condition counts, when its app says so (translated by the server).
    if (spec.help) row.appendChild(el("div", { class: "form-text", text: spec.help }));
    return row;
  }
  function renderGroup(group, parent, index) {
    const box = el("div", { class: parent ? "rule-group" : "" });
    const head = el("div", { class: "mb-2" });
    head.appendChild(el("span", { class: "me-2", text: labels.match }));
    head.appendChild(select([["all", labels.all], ["any", labels.any]], group.match, labels.match, (v) => { group.match = v; changed(); }));
    box.appendChild(head);
    group.rules.forEach((rule, i) => {
      box.appendChild(rule.match ? renderGroup(rule, group, i) : renderCondition(rule, group, i));
    });
    const add = el("button", { type: "button", class: "btn btn-sm btn-outline-primary me-1", text: labels.addCondition });
    add.addEventListener("click", () => { group.rules.push({ field: "consent_email", op: "is_valid", value: "" }); changed(); });
    box.appendChild(add);
    const addGroup = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary me-1", text: labels.addGroup });
    addGroup.addEventListener("click", () => { group.rules.push({ match: "any", rules: [] }); changed(); });
    box.appendChild(addGroup);
    if (parent) {
      const remove = el("button", { type: "button", class: "btn btn-sm btn-link text-danger", text: labels.remove });
      remove.addEventListener("click", () => { parent.rules.splice(index, 1); changed(); });
      box.appendChild(remove);
    }
    return box;
  }
  let timer = null;
  function sync() {
    input.value = JSON.stringify(tree);
    clearTimeout(timer);
    timer = setTimeout(count, 300);
  }
  function changed() { root.replaceChildren(renderGroup(tree, null, 0)); sync(); }
  function count() {
    if (!countTarget || !labels.countUrl) return;
    const body = new URLSearchParams({ rules: input.value });
    fetch(labels.countUrl, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": document.querySelector("[name=csrfmiddlewaretoken]").value },
    }).then((r) => r.text()).then((html) => { countTarget.innerHTML = html; });
  }
  changed();
  }
})();
