"""Former home of the Ray engine; `ray_engine` keeps its two entry points as thin calls into the one
pipeline (`car_select.executors` holds the executors)."""
