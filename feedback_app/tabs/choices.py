"""Radio and Dropdown inputs that refuse a value outside their choices without echoing it.

Gradio's own check quotes the whole value back in the error and the server log ("Value: … is
not in the list of choices"): a 20 MB value came back whole and filled the log. `bounded` puts a
check in front of the component's own that shows the label and at most 80 characters of what was
sent. (A subclass would do the same, but Gradio writes a .pyi stub beside every component subclass.)
"""

from __future__ import annotations

from typing import TypeVar

import gradio as gr

from storage.markup import escape_html

Choice = TypeVar("Choice", gr.Radio, gr.Dropdown)


def bounded(component: Choice) -> Choice:
    """`component`, refusing values outside its choices (a Dropdown's custom values are the handler's to check)."""
    own = component.preprocess

    def preprocess(payload):
        if not getattr(component, "allow_custom_value", False):
            known = [value for _, value in component.choices]
            several = isinstance(payload, list) and getattr(component, "multiselect", False)
            for value in payload if several else [payload]:
                if value is not None and value not in known:
                    raise gr.Error(
                        f"{escape_html(component.label or 'Choice')}: {escape_html(repr(value), 80)} "
                        "is not one of the choices.",
                        print_exception=False,
                    )
        return own(payload)

    component.preprocess = preprocess  # type: ignore[method-assign]
    return component
