"""Run reports: pytest-html, Allure results + Allure HTML, JUnit XML under reports/<run>/.

`framework.report.plugin` is the pytest plugin; `framework.report.attach` holds the
helpers tests and fixtures use to attach evidence to both reports. Nothing is imported
here on purpose, so that registering the plugin module keeps pytest's assertion rewriting
and hook validation in the plugin's own hands.
"""
