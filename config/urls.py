from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.health import healthz
from config.landing import home
from config.middleware import api_not_found
from tenancy.authentication import LoginView, ThrottledAdminAuthenticationForm

# Admin's own login page counts failures like ours.
admin.site.login_form = ThrottledAdminAuthenticationForm

# Swagger UI's page carries one inline <style> block; its script is served as a file.
api_docs_csp: dict[str, list[str]] = {
    **settings.SECURE_CSP,
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
}

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("review/", include("review.urls")),
    path("exports/", include("exports.urls")),
    path("projects/", include("tenancy.urls")),
    path("projects/", include("signals.urls")),
    path("api/v1/", include("feedback.urls")),
    path("api/v1/", include("review.api_urls")),
    path("api/v1/", include("exports.api_urls")),
    path("api/v1/", include("signals.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        csp_override(api_docs_csp)(SpectacularSwaggerSplitView.as_view(url_name="schema")),
        name="api-docs",
    ),
]

if settings.GLEANER_PLAYGROUND:
    urlpatterns.append(path("playground/", include("playground.urls")))

# Last: an /api/ path no route above took is a JSON 404, whatever DEBUG says.
urlpatterns.append(re_path(r"^api/", api_not_found))

handler400 = "config.middleware.bad_request"
handler403 = "config.middleware.permission_denied"
handler404 = "config.middleware.page_not_found"
handler500 = "config.middleware.server_error"
