"""The operations page, rendered with Jinja2 autoescaping (GOV.UK Frontend classes)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, select_autoescape

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))

OPERATIONS = _env.from_string(
    """<!DOCTYPE html>
<html lang="en" class="govuk-template"><head><meta charset="utf-8">
<title>Operations – nominal</title>
<link rel="stylesheet" href="/static/vendor/govuk-frontend/govuk-frontend.min.css"></head>
<body class="govuk-template__body"><main class="govuk-main-wrapper govuk-width-container" id="main-content">
<h1 class="govuk-heading-l">Pipeline runs</h1>
{% if not runs %}<p class="govuk-body">No runs yet. Start one with <code>nominal run</code>.</p>{% endif %}
{% for r in runs %}
<h2 class="govuk-heading-m" id="run-{{ r.run_id }}">Run {{ r.run_id }}
 <strong class="govuk-tag {{ 'govuk-tag--green' if r.status == 'succeeded' else ('govuk-tag--red' if r.status == 'failed' else 'govuk-tag--blue') }}">{{ r.status }}</strong></h2>
<p class="govuk-body">Triggered by {{ r.trigger }}, engine {{ r.engine }}, started {{ r.started_at }},
 {{ '%.1f' % (r.seconds or 0) }} s over {{ r.attempts }} attempt{{ 's' if r.attempts != 1 }}.
 {% if r.error %}<br><span class="govuk-error-message">{{ r.error }}</span>{% endif %}</p>
<table class="govuk-table"><thead class="govuk-table__head"><tr class="govuk-table__row">
<th class="govuk-table__header">Stage</th><th class="govuk-table__header">Attempt</th>
<th class="govuk-table__header">Status</th><th class="govuk-table__header govuk-table__header--numeric">Seconds</th>
<th class="govuk-table__header">Rows written</th><th class="govuk-table__header">Error</th></tr></thead>
<tbody class="govuk-table__body">
{% for s in r.stage_runs %}<tr class="govuk-table__row">
<td class="govuk-table__cell">{{ s.stage }}</td><td class="govuk-table__cell">{{ s.attempt }}</td>
<td class="govuk-table__cell">{{ s.status }}</td>
<td class="govuk-table__cell govuk-table__cell--numeric">{{ '%.1f' % (s.seconds or 0) }}</td>
<td class="govuk-table__cell">{% for t, n in s.outputs.items() %}{{ t }} {{ '{:,}'.format(n) }}{% if not loop.last %}<br>{% endif %}{% endfor %}</td>
<td class="govuk-table__cell">{{ s.error or '' }}</td></tr>{% endfor %}
</tbody></table>
{% endfor %}
</main></body></html>"""
)


def operations_html(runs: list[dict[str, Any]]) -> str:
    return OPERATIONS.render(runs=runs)
