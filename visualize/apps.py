from django.apps import AppConfig


class VisualizeConfig(AppConfig):
    name = "visualize"
    verbose_name = "Visualize"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Cheap and DB-free: the store itself is created on the first event.
        from registry.events import add_listener
        from visualize.store import record

        add_listener(record)
