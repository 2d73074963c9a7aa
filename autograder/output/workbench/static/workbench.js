// The review workbench's only script (the page's Content-Security-Policy allows no other): keyboard
// shortcuts and the comment bank. It never reads or writes student text as markup.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const byId = (id) => document.getElementById(id);
  const bank = byId("bank");
  if (bank) {
    bank.addEventListener("change", () => {
      if (bank.value) { byId("comment").value = bank.value; }
    });
  }
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (target && ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName)) { return; }
    const go = (id) => { const link = byId(id); if (link) { window.location.href = link.href; } };
    const focus = (id) => { const field = byId(id); if (field) { event.preventDefault(); field.focus(); } };
    switch (event.key) {
      case "j": go("next"); break;
      case "k": go("previous"); break;
      case "a": { const button = byId("accept"); if (button) { button.click(); } break; }
      case "e": focus("score"); break;
      case "c": focus("comment"); break;
      default: break;
    }
  });
});
