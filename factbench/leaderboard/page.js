"use strict";
// Card text arrives as JSON data and is only ever set with textContent: it can never become markup.
const cards = JSON.parse(document.getElementById("cards-data").textContent);

function element(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- sort by a column: numbers by value, text alphabetically, missing values always last ----
function sortKey(row, column) {
  const raw = row.cells[column].dataset.sort;
  if (raw === "") return null;
  const number = Number(raw);
  return Number.isFinite(number) ? number : raw;
}

function sortTable(table, column, header) {
  const ascending = header.getAttribute("aria-sort") !== "ascending";
  table.querySelectorAll("th").forEach((th) => th.removeAttribute("aria-sort"));
  header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = sortKey(a, column), y = sortKey(b, column);
    if (x === null || y === null) return (x === null) - (y === null);
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return ascending ? order : -order;
  });
  rows.forEach((row) => body.appendChild(row));
}

// ---- one card's per-relation view ----
function smallTable(headers, rows) {
  const table = element("table");
  const head = table.createTHead().insertRow();
  headers.forEach((h) => head.appendChild(element("th", h)));
  const body = table.createTBody();
  rows.forEach((cells) => {
    const row = body.insertRow();
    cells.forEach((c) => row.appendChild(element("td", c)));
  });
  return table;
}

function showCard(index, block) {
  const panel = block.querySelector(".detail");
  const selected = block.querySelector("tr.selected");
  if (selected) selected.classList.remove("selected");
  if (!panel.hidden && panel.dataset.shown === index) {  // a second click closes it
    panel.hidden = true;
    return;
  }
  const card = cards[Number(index)];
  block.querySelector(`tr[data-card="${index}"]`).classList.add("selected");
  if (card.kind === "audit") {
    const parts = [element("h4", `${card.tuned} — audited against ${card.base}`),
                   element("p", `audit set ${card.audit_set} · training data ${card.training_data} · audited ` +
                                `${card.created} · card: cards/${card.file}`),
                   element("h5", "facts the base recalls, by relation"), smallTable(card.headers, card.rows)];
    card.notes.forEach((note) => parts.push(element("p", `note: ${note}`)));
    panel.replaceChildren(...parts);
    panel.dataset.shown = index;
    panel.hidden = false;
    return;
  }
  const parts = [element("h4", `${card.tuned} — fine-tune of ${card.base}`),
                 element("p", `recipe: ${card.recipe} · scored ${card.created} · card: cards/${card.file}`),
                 element("h5", "held-out facts the base knew, by relation: flips base → fine-tune"),
                 smallTable(["relation", "", "questions", "retained", "forgotten", "acquired", "never known",
                             "retention", "forgotten share [95%]"], card.relations.heldout)];
  if (card.relations.new.length) {
    parts.push(element("h5", "new facts trained on, by relation"),
               smallTable(["relation", "", "questions", "acquired", "known before", "acquisition"],
                          card.relations.new));
  }
  card.notes.forEach((note) => parts.push(element("p", `note: ${note}`)));
  panel.replaceChildren(...parts);
  panel.dataset.shown = index;
  panel.hidden = false;
}

document.querySelectorAll(".protocol").forEach((block) => {
  const table = block.querySelector("table.board");
  table.querySelectorAll("thead th").forEach((th, column) => {
    th.querySelector("button").addEventListener("click", () => sortTable(table, column, th));
  });
  block.querySelectorAll("[data-card]").forEach((item) => {
    item.addEventListener("click", () => showCard(item.dataset.card, block));
    item.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        showCard(item.dataset.card, block);
      }
    });
  });
});

// ---- show one base model's sections, or all ----
document.getElementById("base-filter").addEventListener("change", (event) => {
  const chosen = event.target.value;
  document.querySelectorAll("section.base").forEach((section) => {
    section.hidden = chosen !== "" && section.dataset.base !== chosen;
  });
});
