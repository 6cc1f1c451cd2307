/* Segment builder: edits the filter tree (the JSON shape of promocodes/segments/tree.py)
 * kept in the hidden #filter field; every change fires "tree-changed" (bubbling to the
 * fieldset), on which htmx posts the form for a live count and sample.
 *
 * The editor shows groups ("all of" = and, "any of" = or, "none of" = not(or)) holding
 * conditions and nested groups; "did not receive" on a group condition is not(…).
 *
 * A tree's problems (the server's, in #tree-problems under the builder, replaced by each
 * preview) name a node by its path in the tree ("filters[0].filters[2]"): every node
 * carries its paths (data-paths) so that the one named is highlighted. */
(() => {
  "use strict";
  const form = document.getElementById("segment-form");
  const hidden = document.getElementById("filter");
  const root = document.getElementById("builder");
  const dataEl = document.getElementById("builder-data");
  if (!form || !hidden || !root || !dataEl) return;
  const data = JSON.parse(dataEl.textContent);
  const groups = data.groups;
  // Conditions on issued codes each read the whole issuance history: a segment holds a
  // few (segments/limits.py); past that their adders are disabled, and say why.
  const MAX_HISTORY = data.max_history;
  const HISTORY = new Set(data.history_types);

  const LABELS = {
    issued_count: "Quantity of issued promo codes",
    issued_from_group: "Promo codes issued from the group",
    reached_limit: "Reached the limit of the group",
    field: "Customer field",
    attribute: "Customer attribute",
  };
  const COUNT_OPS = [["eq", "="], ["ne", "≠"], ["lt", "<"], ["lte", "≤"], ["gt", ">"], ["gte", "≥"], ["between", "between"]];
  const TEXT_OPS = [["eq", "is"], ["ne", "is not"], ["contains", "contains"], ["starts_with", "starts with"],
    ["ends_with", "ends with"], ["gt", "greater than"], ["lt", "less than"], ["exists", "is present"]];
  const TIME_OPS = [["gt", "after"], ["lt", "before"], ["exists", "is present"]];
  const SUBSTRING_OPS = ["contains", "starts_with", "ends_with"];
  const FIELDS = [["email", "Email"], ["phone", "Phone"], ["first_name", "First name"], ["last_name", "Last name"], ["created_at", "Created"]];

  let serial = 0;
  const newId = () => `n${++serial}`;

  // --- tree <-> editor model --------------------------------------------------------
  function toModel(node) {
    switch (node && node.type) {
      case "and": return { id: newId(), kind: "group", mode: "all", children: node.filters.map(toModel) };
      case "or": return { id: newId(), kind: "group", mode: "any", children: node.filters.map(toModel) };
      case "not": {
        const inner = node.filter;
        if (inner.type === "or") return { id: newId(), kind: "group", mode: "none", children: inner.filters.map(toModel) };
        if (inner.type === "not") return toModel(inner.filter);
        if (inner.type === "issued_from_group" || inner.type === "reached_limit") return { id: newId(), kind: "cond", node: { ...inner }, negate: true };
        return { id: newId(), kind: "group", mode: "none", children: [toModel(inner)] };
      }
      case undefined: return { id: newId(), kind: "group", mode: "all", children: [] };
      default: return { id: newId(), kind: "cond", node: { ...node }, negate: false };
    }
  }

  // Options left empty are left out; a field's or attribute's value is always sent (even
  // "") so the server can say what is missing instead of meeting a filter without one.
  function clean(node) {
    const out = {};
    for (const [key, value] of Object.entries(node)) {
      if ((key === "value" || key === "name") && (node.type === "field" || node.type === "attribute")) out[key] = value ?? "";
      else if (value !== undefined && value !== null && value !== "") out[key] = value;
    }
    return out;
  }

  // The tree of a model node at ``path`` (the server's way of naming a node); each model
  // node keeps the paths of the JSON nodes it becomes (a "none" group or a negated
  // condition is two: the not and what is inside it).
  const join = (path, part) => (path ? `${path}.${part}` : part);
  function toTree(m, path = "") {
    if (m.kind === "group") {
      const base = m.mode === "none" ? join(path, "filter") : path;
      m.paths = m.mode === "none" ? [path, base] : [path];
      const filters = m.children.map((c, i) => toTree(c, join(base, `filters[${i}]`)));
      if (m.mode === "all") return { type: "and", filters };
      if (m.mode === "any") return { type: "or", filters };
      return { type: "not", filter: { type: "or", filters } };
    }
    m.paths = m.negate ? [path, join(path, "filter")] : [path];
    const node = clean(m.node);
    return m.negate ? { type: "not", filter: node } : node;
  }

  function historyCount(m) {
    if (m.kind === "group") return m.children.reduce((n, c) => n + historyCount(c), 0);
    return HISTORY.has(m.node.type) ? 1 : 0;
  }

  let model;
  try {
    model = toModel(JSON.parse(hidden.value || "null"));
  } catch (e) {
    model = toModel(null);
  }
  if (model.kind !== "group") model = { id: newId(), kind: "group", mode: "all", children: [model] };

  function sync() {
    hidden.value = JSON.stringify(toTree(model));
    root.dispatchEvent(new CustomEvent("tree-changed", { bubbles: true }));
  }

  // --- DOM helpers -------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === false || value === undefined || value === null) continue;
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function labelled(id, text, control, hiddenLabel) {
    return el("span", { class: "ctl" },
      el("label", { for: id, class: hiddenLabel ? "visually-hidden" : "", text }), control);
  }

  function select(id, options, value, onChange) {
    const s = el("select", { id, onchange: (e) => onChange(e.target.value) });
    for (const [v, text] of options) {
      s.append(el("option", { value: v, selected: String(value ?? "") === String(v), text }));
    }
    return s;
  }

  function input(id, type, value, onInput, extra) {
    return el("input", { id, type, value: value ?? "", oninput: (e) => onInput(e.target.value), ...(extra || {}) });
  }

  const groupOptions = (anyLabel) => [...(anyLabel ? [["", anyLabel]] : []), ...groups.map((g) => [String(g.id), g.name])];
  const day = (iso) => (iso ? String(iso).slice(0, 10) : "");
  const startOf = (d) => (d ? `${d}T00:00:00Z` : undefined);
  const dayAfter = (d) => {
    if (!d) return undefined;
    const t = new Date(`${d}T00:00:00Z`);
    t.setUTCDate(t.getUTCDate() + 1);
    return t.toISOString().replace(".000Z", "Z");
  };
  const dayBefore = (iso) => {
    if (!iso) return "";
    const t = new Date(iso);
    t.setUTCMilliseconds(t.getUTCMilliseconds() - 1);
    return t.toISOString().slice(0, 10);
  };
  const whole = (v) => (v === "" ? undefined : Math.max(0, Math.trunc(Number(v))));

  // --- editors -------------------------------------------------------------------------
  function countEditor(m) {
    const n = m.node;
    const id = m.id;
    const between = n.op === "between";
    const low = between ? (Array.isArray(n.value) ? n.value[0] : n.value) : n.value;
    const high = between && Array.isArray(n.value) ? n.value[1] : undefined;
    const parts = [
      labelled(`${id}-op`, "Comparison", select(`${id}-op`, COUNT_OPS, n.op, (v) => {
        n.op = v;
        n.value = v === "between" ? [whole(low) ?? 0, whole(low) ?? 0] : (Array.isArray(n.value) ? n.value[0] : n.value);
        render(`${id}-op`);
        sync();
      }), true),
      labelled(`${id}-value`, between ? "From" : "Number", input(`${id}-value`, "number", low, (v) => {
        if (n.op === "between") n.value = [whole(v), Array.isArray(n.value) ? n.value[1] : whole(v)];
        else n.value = whole(v);
        sync();
      }, { min: 0, step: 1, class: "num-input" }), !between),
    ];
    if (between) {
      parts.push(labelled(`${id}-high`, "to", input(`${id}-high`, "number", high, (v) => {
        n.value = [Array.isArray(n.value) ? n.value[0] : 0, whole(v)];
        sync();
      }, { min: 0, step: 1, class: "num-input" })));
    }
    parts.push(
      labelled(`${id}-group`, "from", select(`${id}-group`, groupOptions("any group"), n.group_id, (v) => {
        n.group_id = v ? Number(v) : undefined;
        sync();
      })),
      labelled(`${id}-kind`, "issue", select(`${id}-kind`, [["", "initial or repeat"], ["initial", "initial"], ["repeat", "repeat"]], n.kind, (v) => {
        n.kind = v || undefined;
        sync();
      })),
      labelled(`${id}-after`, "issued from", input(`${id}-after`, "date", day(n.issued_after), (v) => {
        n.issued_after = startOf(v);
        sync();
      })),
      labelled(`${id}-before`, "until", input(`${id}-before`, "date", dayBefore(n.issued_before), (v) => {
        n.issued_before = dayAfter(v);
        sync();
      })),
    );
    return parts;
  }

  function fromGroupEditor(m) {
    const n = m.node;
    const id = m.id;
    if (n.group_id === undefined && groups.length) n.group_id = groups[0].id;
    const redeemed = n.redeemed === true ? "yes" : n.redeemed === false ? "no" : "";
    return [
      labelled(`${id}-neg`, "Received", select(`${id}-neg`, [["0", "received a code"], ["1", "did not receive a code"]], m.negate ? "1" : "0", (v) => {
        m.negate = v === "1";
        sync();
      }), true),
      labelled(`${id}-group`, "from the group", select(`${id}-group`, groupOptions(null), n.group_id, (v) => {
        n.group_id = Number(v);
        sync();
      })),
      labelled(`${id}-redeemed`, "Redeemed", select(`${id}-redeemed`, [["", "redeemed or not"], ["yes", "and redeemed it"], ["no", "and did not redeem it"]], redeemed, (v) => {
        n.redeemed = v === "yes" ? true : v === "no" ? false : undefined;
        sync();
      }), true),
    ];
  }

  function limitEditor(m) {
    const n = m.node;
    const id = m.id;
    if (n.group_id === undefined && groups.length) n.group_id = groups[0].id;
    return [
      labelled(`${id}-neg`, "Limit", select(`${id}-neg`, [["0", "reached the limit"], ["1", "did not reach the limit"]], m.negate ? "1" : "0", (v) => {
        m.negate = v === "1";
        sync();
      }), true),
      labelled(`${id}-group`, "of the group", select(`${id}-group`, groupOptions(null), n.group_id, (v) => {
        n.group_id = Number(v);
        sync();
      })),
    ];
  }

  function valueControl(id, n, timed, kind) {
    if (n.op === "exists") {
      return labelled(`${id}-value`, "Present", select(`${id}-value`, [["true", "yes"], ["false", "no"]], n.value === false ? "false" : "true", (v) => {
        n.value = v === "true";
        sync();
      }), true);
    }
    if (timed) {
      return labelled(`${id}-value`, "Date", input(`${id}-value`, "date", day(n.value), (v) => {
        n.value = startOf(v);
        sync();
      }), true);
    }
    const type = kind === "number" ? "number" : "text";
    return labelled(`${id}-value`, "Value", input(`${id}-value`, type, n.value === undefined ? "" : String(n.value), (v) => {
      if (kind === "number") n.value = v === "" ? undefined : Number(v);
      else if (kind === "boolean") n.value = v.trim().toLowerCase() === "true";
      else n.value = v;
      sync();
    }, kind === "boolean" ? { placeholder: "true or false" } : {}), true);
  }

  function fieldEditor(m) {
    const n = m.node;
    const id = m.id;
    const timed = n.field === "created_at";
    const ops = timed ? TIME_OPS : TEXT_OPS;
    return [
      labelled(`${id}-field`, "Field", select(`${id}-field`, FIELDS, n.field, (v) => {
        const wasTimed = n.field === "created_at";
        n.field = v;
        if ((v === "created_at") !== wasTimed) {
          n.op = v === "created_at" ? "gt" : "eq";
          n.value = undefined;
          delete n.ignore_case;
        }
        render(`${id}-field`);
        sync();
      }), true),
      labelled(`${id}-op`, "Comparison", select(`${id}-op`, ops, n.op, (v) => {
        const wasExists = n.op === "exists";
        n.op = v;
        if (v === "exists") n.value = true;
        else if (wasExists) n.value = undefined;
        if (!SUBSTRING_OPS.includes(v)) delete n.ignore_case;  // the server refuses it there
        render(`${id}-op`);
        sync();
      }), true),
      valueControl(id, n, timed, "text"),
      !timed && SUBSTRING_OPS.includes(n.op) ? ignoreCase(id, n) : null,
    ];
  }

  // Left out unless ticked: the stored tree then reads as it always did.
  function ignoreCase(id, n) {
    const box = el("input", { id: `${id}-case`, type: "checkbox", checked: n.ignore_case === true, onchange: (e) => {
      if (e.target.checked) n.ignore_case = true;
      else delete n.ignore_case;
      sync();
    } });
    return el("span", { class: "ctl" }, el("label", { for: `${id}-case` }, box, " any case"));
  }

  function attributeEditor(m) {
    const n = m.node;
    const id = m.id;
    if (!m.valueKind) m.valueKind = typeof n.value === "number" ? "number" : typeof n.value === "boolean" ? "boolean" : "text";
    return [
      labelled(`${id}-name`, "Attribute", input(`${id}-name`, "text", n.name, (v) => {
        n.name = v;
        sync();
      }, { placeholder: "attribute name", class: "attr-name" }), true),
      labelled(`${id}-op`, "Comparison", select(`${id}-op`, TEXT_OPS, n.op, (v) => {
        const wasExists = n.op === "exists";
        n.op = v;
        if (v === "exists") n.value = true;
        else if (wasExists) n.value = undefined;
        render(`${id}-op`);
        sync();
      }), true),
      n.op === "exists" ? null : labelled(`${id}-type`, "Value type", select(`${id}-type`, [["text", "text"], ["number", "number"], ["boolean", "yes/no"]], m.valueKind, (v) => {
        m.valueKind = v;
        n.value = v === "number" ? (Number.isFinite(Number(n.value)) && n.value !== "" ? Number(n.value) : undefined)
          : v === "boolean" ? true : (n.value === undefined ? undefined : String(n.value));
        render(`${id}-type`);
        sync();
      }), true),
      valueControl(id, n, false, m.valueKind),
    ];
  }

  const EDITORS = { issued_count: countEditor, issued_from_group: fromGroupEditor, reached_limit: limitEditor, field: fieldEditor, attribute: attributeEditor };
  const DEFAULTS = {
    issued_count: () => ({ type: "issued_count", op: "gte", value: 1 }),
    issued_from_group: () => ({ type: "issued_from_group", group_id: groups.length ? groups[0].id : undefined }),
    reached_limit: () => ({ type: "reached_limit", group_id: groups.length ? groups[0].id : undefined }),
    field: () => ({ type: "field", field: "email", op: "ends_with", value: "" }),
    attribute: () => ({ type: "attribute", name: "", op: "eq", value: "" }),
  };

  function removeButton(parent, m, what) {
    return el("button", {
      type: "button", class: "secondary outline small remove", "aria-label": `Remove this ${what}`, text: "Remove",
      onclick: () => {
        parent.children.splice(parent.children.indexOf(m), 1);
        render();
        sync();
      },
    });
  }

  function condition(parent, m) {
    const editor = EDITORS[m.node.type];
    const body = editor ? editor(m) : [el("code", { text: JSON.stringify(m.node) })];
    return el("fieldset", { class: `node cond ${m.node.type}`, "data-paths": JSON.stringify(m.paths || []) },
      el("legend", { class: "cond-label", text: LABELS[m.node.type] || m.node.type }),
      el("div", { class: "cond-row" },
        el("span", { class: "cond-body" }, ...body),
        removeButton(parent, m, "condition")));
  }

  function groupBox(parent, m, depth) {
    const id = m.id;
    const list = el("ol", { class: "children" });
    for (const child of m.children) {
      list.append(el("li", {}, child.kind === "group" ? groupBox(m, child, depth + 1) : condition(m, child)));
    }
    if (!m.children.length) {
      list.append(el("li", { class: "muted empty-hint", text: depth === 0 ? "No conditions: every customer matches." : "Empty group." }));
    }
    const adders = el("div", { class: "adders" });
    const full = historyCount(model) >= MAX_HISTORY;
    const noteId = `${id}-history-full`;
    for (const type of ["issued_count", "issued_from_group", "reached_limit", "field", "attribute"]) {
      const refused = full && HISTORY.has(type);
      adders.append(el("button", {
        type: "button", class: "secondary outline small", text: `+ ${LABELS[type]}`,
        disabled: refused, "aria-describedby": refused ? noteId : null,
        onclick: () => {
          m.children.push({ id: newId(), kind: "cond", node: DEFAULTS[type](), negate: false });
          render();
          sync();
        },
      }));
    }
    if (depth < 8) {
      adders.append(el("button", {
        type: "button", class: "secondary outline small", text: "+ Group",
        onclick: () => {
          m.children.push({ id: newId(), kind: "group", mode: "any", children: [] });
          render();
          sync();
        },
      }));
    }
    if (full) {
      adders.append(el("p", {
        class: "limit-note", id: noteId,
        text: `A segment can hold ${MAX_HISTORY} promo code conditions: remove one to add another.`,
      }));
    }
    const head = el("div", { class: "group-head" },
      labelled(`${id}-mode`, "Match", select(`${id}-mode`, [["all", "all of these"], ["any", "any of these"], ["none", "none of these"]], m.mode, (v) => {
        m.mode = v;
        sync();
      })),
      parent ? removeButton(parent, m, "group") : null);
    return el("fieldset", { class: `node group depth-${depth}`, "data-paths": JSON.stringify(m.paths || []) },
      el("legend", { class: "visually-hidden", text: depth ? "Group of conditions" : "Conditions" }),
      head, list, adders);
  }

  function render(focusId) {
    toTree(model);  // the paths of new nodes
    const active = focusId || (document.activeElement && root.contains(document.activeElement) ? document.activeElement.id : null);
    root.replaceChildren(groupBox(null, model, 0));
    if (active) {
      const target = document.getElementById(active);
      if (target) target.focus();
    }
  }

  // Highlight the nodes the problems under the builder name; once none is left (the tree
  // is valid again), the summary's line about the conditions goes too.
  function showProblems() {
    const box = document.getElementById("tree-problems");
    let nodes = [];
    try {
      nodes = JSON.parse((box && box.dataset.nodes) || "[]");
    } catch (e) { /* none */ }
    const named = new Set(nodes.filter(Boolean));
    for (const node of root.querySelectorAll("[data-paths]")) {
      const hit = JSON.parse(node.dataset.paths).some((p) => named.has(p));
      node.classList.toggle("problem", hit);
      if (hit) node.setAttribute("aria-describedby", "tree-problems");
      else node.removeAttribute("aria-describedby");
    }
    const conditions = document.getElementById("conditions");
    if (nodes.length) {
      if (conditions) conditions.setAttribute("aria-invalid", "true");
      return;
    }
    if (conditions) conditions.removeAttribute("aria-invalid");
    const summary = document.getElementById("error-summary");
    const link = summary && summary.querySelector('a[href="#conditions"]');
    if (link) {
      link.closest("li").remove();
      if (!summary.querySelector("li")) summary.remove();
    }
  }

  render();
  hidden.value = JSON.stringify(toTree(model));
  showProblems();
  document.body.addEventListener("htmx:afterSettle", showProblems);
})();
