"""Execution engines other than the local one (`car_select.pipeline`).

`ray_engine` runs the same stages on Ray Data; it is optional (``pip install 'car-select[ray]'``)
and imports Ray only when one of its functions is called, so importing this package never needs it.
"""
