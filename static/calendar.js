// The shared campaign calendar, with the journeys running beside the campaigns. Dragging a draft moves it once the user confirms; the server
// answers at once and its worker counts the new date's audience and marketing pressure,
// which the banner shows when they are ready.
(function () {
  "use strict";
  const element = document.getElementById("calendar");
  if (!element || !window.FullCalendar) return;
  const csrf = (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";
  const impact = document.getElementById("pressure-impact");

  function move(id, date, confirm) {
    // The calendar runs in "UTC" over wall-clock times (see timeZone below): the moved date's
    // UTC fields are the app's local time, sent without an offset for the server to place.
    const wallClock = date.toISOString().slice(0, 19);
    const body = new URLSearchParams({ send_at: wallClock, confirm: confirm ? "1" : "0" });
    return fetch(`/campaigns/${id}/move/`, {
      method: "POST", body, headers: { "X-CSRFToken": decodeURIComponent(csrf) }, credentials: "same-origin",
    }).then((r) => r.json());
  }

  const calendar = new FullCalendar.Calendar(element, {
    initialView: "dayGridMonth",
    locale: element.dataset.locale === "fr" ? "fr" : "en",
    firstDay: 1,
    // Events come as the app's wall-clock times without an offset: shown as they are, not
    // converted to the browser's zone (a marketer abroad sees the store's 10:00 as 10:00).
    timeZone: "UTC",
    height: "auto",
    headerToolbar: { left: "prev,next today", center: "title", right: "dayGridMonth,timeGridWeek,listMonth" },
    // Campaigns, and journeys: a journey runs from its start with no end, so it comes as a
    // bar drawn past the range shown (it reads as still going) and cannot be dragged.
    eventSources: [element.dataset.events, element.dataset.journeys].filter(Boolean),
    eventClick(info) { info.jsEvent.preventDefault(); window.location = info.event.extendedProps.url; },
    eventDrop(info) {
      // Nothing is counted while the user waits: the move is saved at once and the worker
      // counts the new date's audience; the banner follows its progress.
      if (!window.confirm(element.dataset.move)) { info.revert(); return; }
      move(info.event.id, info.event.start, true).then((answer) => {
        if (answer.error || !answer.moved) {
          info.revert();
          impact.textContent = answer.error || "";
          impact.classList.toggle("d-none", !answer.error);
          return;
        }
        const before = answer.pressure_before === null || answer.pressure_before === undefined ? "—" : answer.pressure_before;
        impact.textContent = element.dataset.counting;
        impact.classList.remove("d-none");
        let tries = 0;
        const poll = () => {
          move(info.event.id, info.event.start, false).then((now) => {
            if (!now.ready && tries++ < 60) { setTimeout(poll, 2000); return; }
            if (!now.ready) { impact.textContent = element.dataset.late; return; }
            const text = element.dataset.result
              .replace("%(recipients)s", now.recipients).replace("%(pressure)s", now.pressure)
              .replace("%(before)s", before);
            const sources = now.sources.map((s) => `${s.campaign} (${s.contacts})`).join(", ");
            impact.textContent = sources ? `${text} — ${sources}` : text;
          });
        };
        setTimeout(poll, 1000);
      });
    },
  });
  // FullCalendar names each day cell after its number only, which screen readers announce in
  // place of the cell's events; its toolbar icons are images without text inside buttons that
  // have a title. The cell's own content names it, and the icons are decoration.
  function accessible() {
    element.querySelectorAll("td[role=gridcell][aria-labelledby]").forEach((cell) => cell.removeAttribute("aria-labelledby"));
    element.querySelectorAll(".fc-icon[role=img]").forEach((icon) => {
      icon.removeAttribute("role");
      icon.setAttribute("aria-hidden", "true");
    });
  }
  calendar.setOption("datesSet", accessible);
  calendar.setOption("eventsSet", accessible);
  calendar.render();
  accessible();
})();
