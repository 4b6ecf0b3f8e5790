<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="AllStyleCategories" hasScaleBasedVisibilityFlag="0" minScale="1e+08" maxScale="0">
  <!-- Uncertainty (mm): OrRd, 0-200 mm -->
  <pipe>
    <provider>
      <resampling enabled="false" zoomedInResamplingMethod="nearestNeighbour" zoomedOutResamplingMethod="nearestNeighbour" maxOversampling="2"/>
    </provider>
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1" nodataColor="" classificationMin="0" classificationMax="200">
      <rasterTransparency/>
      <minMaxOrigin>
        <limits>None</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" minimumValue="0" maximumValue="200" labelPrecision="2">
          <colorramp type="gradient" name="[source]">
            <Option type="Map">
              <Option type="QString" name="color1" value="255,247,236,255"/>
              <Option type="QString" name="color2" value="127,0,0,255"/>
              <Option type="QString" name="discrete" value="0"/>
              <Option type="QString" name="rampType" value="gradient"/>
              <Option type="QString" name="stops" value="0.1250;254,232,200,255:0.2500;253,212,158,255:0.3750;253,187,132,255:0.5000;252,141,89,255:0.6250;239,101,72,255:0.7500;215,48,31,255:0.8750;179,0,0,255"/>
            </Option>
          </colorramp>
              <item alpha="255" value="0.0" label="0 mm" color="#fff7ec"/>
              <item alpha="255" value="25.0" label="25 mm" color="#fee8c8"/>
              <item alpha="255" value="50.0" label="50 mm" color="#fdd49e"/>
              <item alpha="255" value="75.0" label="75 mm" color="#fdbb84"/>
              <item alpha="255" value="100.0" label="100 mm" color="#fc8d59"/>
              <item alpha="255" value="125.0" label="125 mm" color="#ef6548"/>
              <item alpha="255" value="150.0" label="150 mm" color="#d7301f"/>
              <item alpha="255" value="175.0" label="175 mm" color="#b30000"/>
              <item alpha="255" value="200.0" label="200 mm" color="#7f0000"/>
          <rampLegendSettings minimumLabel="" maximumLabel="" prefix="" suffix=" mm" direction="0" useContinuousLegend="1" orientation="2">
            <numericFormat id="basic">
              <Option type="Map">
                <Option type="QChar" name="decimal_separator" value=""/>
                <Option type="int" name="decimals" value="6"/>
                <Option type="int" name="rounding_type" value="0"/>
                <Option type="bool" name="show_plus" value="false"/>
                <Option type="bool" name="show_thousand_separator" value="true"/>
                <Option type="bool" name="show_trailing_zeros" value="false"/>
                <Option type="QChar" name="thousand_separator" value=""/>
              </Option>
            </numericFormat>
          </rampLegendSettings>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" colorizeOn="0" grayscaleMode="0" colorizeStrength="100" colorizeRed="255" colorizeGreen="128" colorizeBlue="128" invertColors="0"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
