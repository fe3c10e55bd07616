"""The Gradio annotation and review app."""
