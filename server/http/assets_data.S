/* The files the daemon serves, linked into the binary so that a daemon
 * started from any directory (or a container) serves the same bytes as the
 * tree it was built from. Each is NUL-terminated; the size excludes it. */
	.section .rodata

	.global pcd_asset_openapi_yaml
	.global pcd_asset_openapi_yaml_size
	.balign 16
pcd_asset_openapi_yaml:
	.incbin "api/openapi.yaml"
pcd_asset_openapi_yaml_end:
	.byte 0
	.balign 8
pcd_asset_openapi_yaml_size:
	.quad pcd_asset_openapi_yaml_end - pcd_asset_openapi_yaml

	.global pcd_asset_index_html
	.global pcd_asset_index_html_size
	.balign 16
pcd_asset_index_html:
	.incbin "server/dashboard/index.html"
pcd_asset_index_html_end:
	.byte 0
	.balign 8
pcd_asset_index_html_size:
	.quad pcd_asset_index_html_end - pcd_asset_index_html

	.global pcd_asset_app_js
	.global pcd_asset_app_js_size
	.balign 16
pcd_asset_app_js:
	.incbin "server/dashboard/app.js"
pcd_asset_app_js_end:
	.byte 0
	.balign 8
pcd_asset_app_js_size:
	.quad pcd_asset_app_js_end - pcd_asset_app_js

	.global pcd_asset_style_css
	.global pcd_asset_style_css_size
	.balign 16
pcd_asset_style_css:
	.incbin "server/dashboard/style.css"
pcd_asset_style_css_end:
	.byte 0
	.balign 8
pcd_asset_style_css_size:
	.quad pcd_asset_style_css_end - pcd_asset_style_css

	.section .note.GNU-stack,"",@progbits
