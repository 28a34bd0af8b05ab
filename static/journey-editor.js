// The journey flow editor: shows only the fields of each step's (and the trigger's) chosen
// kind. The server draws the same on every post, so the page works without this script.
(function () {
  "use strict";
  const form = document.getElementById("flow-editor");
  if (!form) return;
  function update() {
    form.querySelectorAll("[data-show-when]").forEach((group) => {
      const control = form.querySelector(`[name="${group.dataset.showWhen}"]`);
      if (!control) return;
      group.hidden = !group.dataset.values.split(" ").includes(control.value);
    });
  }
  form.addEventListener("change", update);
  update();
})();
