// The shared campaign calendar. Dragging a draft first asks the server what the new date
// does to marketing pressure, then moves it only when the user confirms.
(function () {
  "use strict";
  const element = document.getElementById("calendar");
  if (!element || !window.FullCalendar) return;
  const csrf = (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";
  const impact = document.getElementById("pressure-impact");

  function move(id, date, confirm) {
    const body = new URLSearchParams({ send_at: date.toISOString(), confirm: confirm ? "1" : "0" });
    return fetch(`/campaigns/${id}/move/`, {
      method: "POST", body, headers: { "X-CSRFToken": decodeURIComponent(csrf) }, credentials: "same-origin",
    }).then((r) => r.json());
  }

  const calendar = new FullCalendar.Calendar(element, {
    initialView: "dayGridMonth",
    locale: element.dataset.locale === "fr" ? "fr" : "en",
    firstDay: 1,
    height: "auto",
    headerToolbar: { left: "prev,next today", center: "title", right: "dayGridMonth,timeGridWeek,listMonth" },
    events: element.dataset.events,
    eventClick(info) { info.jsEvent.preventDefault(); window.location = info.event.extendedProps.url; },
    eventDrop(info) {
      move(info.event.id, info.event.start, false).then((answer) => {
        if (answer.error) { info.revert(); impact.textContent = answer.error; impact.classList.remove("d-none"); return; }
        const text = element.dataset.question
          .replace("%(recipients)s", answer.recipients).replace("%(pressure)s", answer.pressure)
          .replace("%(before)s", answer.pressure_before === null ? "—" : answer.pressure_before);
        const sources = answer.sources.map((s) => `${s.campaign} (${s.contacts})`).join(", ");
        impact.textContent = sources ? `${text} — ${sources}` : text;
        impact.classList.remove("d-none");
        if (window.confirm(impact.textContent)) {
          move(info.event.id, info.event.start, true).then((done) => { if (!done.moved) info.revert(); });
        } else {
          info.revert();
        }
      });
    },
  });
  calendar.render();
})();
