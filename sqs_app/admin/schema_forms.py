"""Django form fields made from the DRF serializers in sqs_app.schemas.

The form only lays the fields out (name, label, choices, help, whether the
schema requires it); it does not validate. Validation is the serializer's,
run on the assembled message exactly as the API runs it, and its errors are
put back beside the fields they name. So a field or a rule is written once,
in sqs_app/schemas.py, and the admin form follows it.
"""

import json

from django import forms
from rest_framework import serializers

JSON_FIELDS = (serializers.DictField, serializers.JSONField, serializers.ListField)


def form_field(field: serializers.Field) -> forms.Field:
    """A lenient form field shaped like the serializer field (the serializer validates)."""
    label = field.label or field.field_name.replace("_", " ")
    help_text = str(field.help_text or "")
    common = {"required": False, "label": label, "help_text": help_text}
    if isinstance(field, serializers.ChoiceField):
        choices = [("", "---------")] if not field.required else []
        choices += [(value, str(text)) for value, text in field.choices.items()]
        initial = field.default if field.default is not serializers.empty else None
        return forms.ChoiceField(choices=choices, initial=initial, **common)
    if isinstance(field, JSON_FIELDS):
        widget = forms.Textarea(attrs={"rows": 4, "placeholder": "JSON"})
        return forms.CharField(widget=widget, **{**common, "help_text": help_text or "JSON"})
    if isinstance(field, serializers.BooleanField):
        return forms.BooleanField(**common)
    if isinstance(field, serializers.IntegerField):
        attrs = {key: value for key, value in (("min", field.min_value), ("max", field.max_value)) if value}
        return forms.CharField(widget=forms.NumberInput(attrs=attrs), **common)
    if isinstance(field, serializers.URLField):
        return forms.CharField(widget=forms.URLInput(), **common)
    if type(field) is serializers.CharField and field.max_length is None:  # free text: room to write
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), **common)
    return forms.CharField(**common)


def form_fields(
    serializer_class, *, prefix: str = "", exclude: tuple[str, ...] = (), help_texts: dict | None = None
) -> dict[str, forms.Field]:
    """Form fields for a serializer's writable fields, named `prefix + name`."""
    fields = {}
    for name, field in serializer_class().fields.items():
        if name in exclude or field.read_only:
            continue
        fields[prefix + name] = form_field(field)
        if help_texts and name in help_texts:
            fields[prefix + name].help_text = help_texts[name]
        fields[prefix + name].schema_required = field.required
    return fields


def values(serializer_class, cleaned: dict, *, prefix: str = "") -> tuple[dict, dict[str, str]]:
    """The non-empty values typed for a serializer's fields, JSON ones parsed.

    Returns (values, errors by form field name) — a JSON field that does not parse.
    """
    found, problems = {}, {}
    for name, field in serializer_class().fields.items():
        raw = cleaned.get(prefix + name)
        if raw in (None, "") or raw is False and not isinstance(field, serializers.BooleanField):
            continue
        if isinstance(field, JSON_FIELDS):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                problems[prefix + name] = f"Not valid JSON: {exc}"
                continue
        found[name] = raw
    return found, problems
